"""services.kit.waiting.retry_until: the one loop that waits for a server still starting."""

from __future__ import annotations

import time

import pytest

from services.kit.waiting import retry_until


class NotYet(Exception):
    pass


def test_retries_until_the_attempt_succeeds() -> None:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise NotYet
        return "up"

    assert retry_until(attempt, seconds=5, pause=0.001, retry_on=NotYet) == "up"
    assert len(calls) == 3


def test_raises_the_last_failure_once_the_time_is_up() -> None:
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise NotYet(len(calls))

    started = time.monotonic()
    with pytest.raises(NotYet) as failed:
        retry_until(attempt, seconds=0.05, pause=0.01, retry_on=NotYet)
    assert time.monotonic() - started < 1
    assert len(calls) >= 2
    assert failed.value.args == (len(calls),)


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def attempt() -> None:
        calls.append(1)
        raise KeyError("wrong")

    with pytest.raises(KeyError):
        retry_until(attempt, seconds=5, pause=0.001, retry_on=NotYet)
    assert calls == [1]
