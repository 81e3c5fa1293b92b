"""services.user.store in memory."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from services.kit.sql import Connection
from services.user.domain import Profile
from tests.support.fakes.journal import Journal


class FakeUserStore:
    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal or Journal()
        self.profiles: dict[str, Profile] = {}

    def snapshot(self) -> Any:
        return copy.copy(self.profiles)

    def restore(self, state: Any) -> None:
        self.profiles = state

    async def get(self, conn: Connection, user_id: str) -> Profile | None:
        return self.profiles.get(user_id)

    async def create_or_get(
        self, conn: Connection, user_id: str, email: str | None, name: str | None
    ) -> tuple[Profile, bool]:
        self.journal.add("users.create_or_get")
        found = self.profiles.get(user_id)
        if found is None:
            created = Profile(user_id, email, name, False, datetime.now(UTC))
            self.profiles[user_id] = created
            return created, True
        # A missing email or name is filled in; one already there is kept.
        filled = replace(found, email=found.email or email, name=found.name or name)
        self.profiles[user_id] = filled
        return filled, False

    async def mark_credits_ready(self, conn: Connection, user_id: str) -> None:
        self.journal.add("users.mark_credits_ready")
        self.profiles[user_id] = replace(self.profiles[user_id], credits_ready=True)
