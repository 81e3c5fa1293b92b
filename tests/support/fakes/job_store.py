"""services.scheduler.store's job-run statements in memory."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from services.kit.sql import Connection
from tests.support.fakes.journal import Journal


@dataclass
class JobRunRow:
    job: str
    instance: str
    trigger: str
    outcome: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


class FakeJobRunStore:
    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal or Journal()
        self.runs: list[JobRunRow] = []

    def snapshot(self) -> Any:
        return copy.deepcopy(self.runs)

    def restore(self, state: Any) -> None:
        self.runs = state

    async def record_start(self, conn: Connection, job: str, instance: str, trigger: str) -> int:
        self.journal.add(f"job_runs.start:{job}")
        self.runs.append(JobRunRow(job, instance, trigger))
        return len(self.runs)

    async def record_finish(
        self,
        conn: Connection,
        run_id: int,
        outcome: str,
        counts: dict[str, int],
        error: str | None,
    ) -> None:
        self.journal.add(f"job_runs.finish:{outcome}")
        run = self.runs[run_id - 1]
        run.outcome, run.counts, run.error = outcome, dict(counts), error
