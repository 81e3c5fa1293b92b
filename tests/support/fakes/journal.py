"""One ordered record of what the fakes did, across stores and services, so a test can check the
order of effects that correctness rests on (reserve -> charge -> mark)."""

from __future__ import annotations


class Journal:
    def __init__(self) -> None:
        self.events: list[str] = []

    def add(self, event: str) -> None:
        self.events.append(event)

    def count(self, event: str) -> int:
        return self.events.count(event)

    def first(self, event: str) -> int:
        """Position of the first `event`; fails the test when it never happened."""
        assert event in self.events, f"{event} never happened; journal: {self.events}"
        return self.events.index(event)

    def in_order(self, *events: str) -> bool:
        """Whether each event happened, the first occurrences in this order."""
        positions = [self.first(event) for event in events]
        return positions == sorted(positions)

    def clear(self) -> None:
        self.events.clear()
