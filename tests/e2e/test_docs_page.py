"""GET /docs in a real browser: Debian's chromium, headless, loads the page from the gateway with
every other host unresolvable (so nothing may come from a CDN), runs Redoc on the served document,
and the rendered page lists every operation of docs/openapi.json. `make test` installs chromium
when it is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.contract import load_document
from tests.support.stack import Stack

BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Offline but for the gateway: any other host fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def rendered_dom(url: str, profile: Path) -> str:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail(
            "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
        )
    done = subprocess.run(
        [
            browser,
            *BROWSER_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2_000:]
    return done.stdout


def test_docs_page_renders_every_operation_offline(stack: Stack, tmp_path: Path) -> None:
    dom = rendered_dom(f"{stack.base_url}/docs", tmp_path / "profile")
    document = load_document()
    assert "StudioX API" in dom, dom[:2_000]
    missing = []
    for path, operations in document["paths"].items():
        for operation in operations.values():
            # Redoc gives each operation an anchor and prints its summary and path.
            anchor = f'id="operation/{operation["operationId"]}"'
            if anchor not in dom or operation["summary"] not in dom or path not in dom:
                missing.append(f"{operation['operationId']} ({path})")
    assert not missing, f"not on the page: {missing}"
    # Redoc reports a document it cannot load in the page itself.
    assert "Something went wrong" not in dom
