from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def server_tempdir(prefix: str) -> Iterator[Path]:
    """A temporary folder outside pytest's private tmp root: as root, PostgreSQL runs as its own
    system user, which must reach its data folder (pytest resets its root to 0700 whenever any
    session starts)."""
    path = Path(tempfile.mkdtemp(prefix=f"studiox-{prefix}-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
