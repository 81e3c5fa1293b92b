"""services.billing.topup_store in memory (auto top-up settings, top-ups per crossing, billing's
outbox events), rolled back with FakeDatabase's transactions."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from services.billing.topup_store import TopUp, TopUpSettings
from services.kit.sql import Connection
from tests.support.fakes.journal import Journal


class FakeTopUpStore:
    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal or Journal()
        self.settings: dict[str, TopUpSettings] = {}
        self.top_ups: dict[int, TopUp] = {}
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def snapshot(self) -> Any:
        return copy.deepcopy((self.settings, self.top_ups, self.events))

    def restore(self, state: Any) -> None:
        self.settings, self.top_ups, self.events = state

    async def get_settings(
        self, conn: Connection, user_id: str, *, lock: bool = False
    ) -> TopUpSettings | None:
        return self.settings.get(user_id)

    async def put_settings(
        self, conn: Connection, user_id: str, enabled: bool, threshold: int, pack_id: str
    ) -> TopUpSettings:
        old = self.settings.get(user_id)
        new = TopUpSettings(
            user_id,
            enabled,
            threshold,
            pack_id,
            old.payment_method_id if old else None,
            0 if enabled or old is None else old.failures,
            "" if enabled or old is None else old.disabled_reason,
        )
        self.settings[user_id] = new
        return new

    async def save_card(
        self, conn: Connection, user_id: str, payment_method_id: str
    ) -> TopUpSettings | None:
        if user_id not in self.settings:
            return None
        self.settings[user_id] = replace(
            self.settings[user_id], payment_method_id=payment_method_id
        )
        return self.settings[user_id]

    async def record_result(
        self, conn: Connection, user_id: str, *, failed: bool, disable_after: int, reason: str
    ) -> TopUpSettings:
        s = self.settings[user_id]
        failures = s.failures + 1 if failed else 0
        off = failed and failures >= disable_after
        self.settings[user_id] = replace(
            s,
            failures=failures,
            enabled=s.enabled and not off,
            disabled_reason=reason if off else s.disabled_reason,
        )
        return self.settings[user_id]

    async def start_top_up(
        self, conn: Connection, crossing_id: int, user_id: str, pack_id: str
    ) -> tuple[TopUp, bool]:
        if crossing_id in self.top_ups:
            return self.top_ups[crossing_id], False
        top_up = TopUp(crossing_id, user_id, pack_id, None, None, "pending", "")
        self.top_ups[crossing_id] = top_up
        return top_up, True

    async def top_ups_today(self, conn: Connection, user_id: str) -> int:
        return sum(
            1
            for t in self.top_ups.values()
            if t.user_id == user_id and t.status in ("pending", "succeeded")
        )

    async def bind_top_up(self, conn: Connection, crossing_id: int, order_ref: str) -> None:
        self.top_ups[crossing_id] = replace(self.top_ups[crossing_id], order_ref=order_ref)

    async def finish_top_up(
        self,
        conn: Connection,
        crossing_id: int,
        status: str,
        stripe_id: str | None,
        detail: str,
    ) -> bool:
        top_up = self.top_ups[crossing_id]
        if top_up.status != "pending":
            return False
        self.top_ups[crossing_id] = replace(
            top_up, status=status, stripe_id=stripe_id or top_up.stripe_id, detail=detail
        )
        self.journal.add(f"topup.{status}")
        return True

    async def enqueue_event(
        self, conn: Connection, event_type: str, user_id: str, data: dict[str, Any]
    ) -> str:
        self.events.append((event_type, user_id, data))
        self.journal.add(f"event.{event_type}")
        return f"evt_{len(self.events)}"
