"""Schemathesis runs docs/openapi.json against the live stack through Envoy, with a real dev token
(and the internal credential, so the worker route is exercised too): every operation, generated
valid and invalid inputs, and three verdicts on every answer: no 5xx, a status the document
declares for that operation, and a body (and headers) that fit the document.

`make test` runs a bounded pass (fixed seed, a few examples per operation, well under a minute);
`make fuzz` (STUDIOX_FUZZ=long) runs far more cases with every phase and writes the figures into
docs/RELIABILITY.md."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_tasks import grant_purchased
from tests.support.cluster import INTERNAL_TOKEN
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
LONG = os.environ.get("STUDIOX_FUZZ") == "long"
SEED = 20261128
RELIABILITY = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"
START, END = "<!-- schemathesis:start -->", "<!-- schemathesis:end -->"


def run_schemathesis(stack: Stack, report: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    user_id = new_user_id()
    token = DEFAULT_KEY.mint(user_id, email="fuzz@example.com", lifetime=3600)
    with stack.client() as http:
        reply = http.post(
            "/api/users/initialize",
            json={"email": "fuzz@example.com"},
            headers={"authorization": f"Bearer {token}"},
        )
        assert reply.status_code == 201, reply.text
    # Enough credits that creations keep succeeding (402 is declared, but 201 is the path to test).
    grant_purchased(stack, user_id, 100_000)
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{stack.base_url}/api/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--header",
        f"Authorization: Bearer {token}",
        "--header",
        f"x-internal-token: {INTERNAL_TOKEN}",
        "--mode",
        "all",
        "--workers",
        "2",
        "--generation-database",
        "none",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
        "--output-truncate",
        "true",
    ]
    if LONG:
        command += ["--max-examples", "150", "--max-time", "420"]
    else:
        command += [
            "--seed",
            str(SEED),
            "--max-examples",
            "12",
            "--phases",
            "examples,coverage,fuzzing",
        ]
    # Its working folder gets a .schemathesis/ cache: keep it out of the repository.
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600 if LONG else 120,
        check=False,
        cwd=report.parent,
    )
    return done, json.loads(report.read_text())


@pytest.mark.timeout(900 if LONG else 300)
def test_schemathesis_finds_no_contract_violations(stack: Stack, tmp_path: Path) -> None:
    done, report = run_schemathesis(stack, tmp_path / "schemathesis.json")
    if LONG:
        write_figures(report)
    cases = report["test_cases"]
    assert report["operations"]["tested"] == report["operations"]["total"] == 27, done.stdout
    assert cases["generated"] > 0
    assert cases["with_failures"] == 0, done.stdout[-12_000:] + done.stderr[-2_000:]
    assert not report["errors"], done.stdout[-12_000:] + done.stderr[-2_000:]
    assert done.returncode == 0, done.stdout[-4_000:]
    print(done.stdout[done.stdout.rfind("SUMMARY") - 40 :])


def write_figures(report: dict[str, Any]) -> None:
    """The figures of a `make fuzz` run, as a section of docs/RELIABILITY.md (kept between markers,
    which `make bench` preserves when it rewrites the rest)."""
    cases = report["test_cases"]
    failures = ", ".join(
        f"{f['code']} {f['title']}: {f['count']} ({'; '.join(f['operations'])})"
        for f in report["failures"]
    )
    section = "\n".join(
        [
            START,
            "## Contract fuzzing (Schemathesis)",
            "",
            f"Measured by `make fuzz` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: Schemathesis "
            f"{report['schemathesis_version']} ran docs/openapi.json against the live stack "
            "through Envoy with a real dev token, valid and invalid inputs, every phase "
            f"({', '.join(report['phases'])}), seed {report['seed']}.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| operations tested | {report['operations']['tested']} of "
            f"{report['operations']['total']} |",
            f"| test cases generated | {cases['generated']:,} |",
            f"| cases with failures | {cases['with_failures']} |",
            f"| unique failures | {cases['unique_failures']} |",
            f"| errors (could not run) | {len(report['errors'])} |",
            f"| running time | {report['running_time']:.0f} s |",
            f"| checks | {', '.join(CHECKS)} |",
            "",
            f"Failures: {failures or 'none'}.",
            END,
        ]
    )
    text = RELIABILITY.read_text() if RELIABILITY.exists() else "# Reliability\n"
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RELIABILITY.write_text(text)
