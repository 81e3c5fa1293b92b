"""services.kit.batching.Batcher: a key submitted while nothing is written goes at once, alone;
keys submitted while a write is in flight go together in the next one; every caller gets its own
key's result only after the write carrying it returned; a failure reaches only its batch, and a
value the database refuses only the callers of its own key."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.kit.batching import Batcher


class Store:
    """Writes keys it is told to find; each write waits until the test releases it."""

    def __init__(
        self, *, missing: frozenset[int] = frozenset(), poison: frozenset[int] = frozenset()
    ) -> None:
        self.writes: list[list[int]] = []
        self.missing = missing
        self.poison = poison  # any write holding one of these fails, as a refused value would
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next = False
        self.unreachable = False

    async def write(self, keys: list[int]) -> dict[int, str]:
        self.writes.append(keys)
        await self.gate.wait()
        if self.unreachable:
            raise ConnectionError("the database is unreachable")
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the database went away")
        if self.poison.intersection(keys):
            raise ValueError("integer out of range")
        return {key: f"row {key}" for key in keys if key not in self.missing}


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _behind_a_write(
    store: Store, batcher: Batcher[int, str], first: int, keys: tuple[int, ...]
) -> tuple[asyncio.Task[str | None], list[asyncio.Task[str | None]]]:
    """`first` submitted alone and its write held open; then `keys`, which queue behind it."""
    store.gate.clear()
    held = asyncio.create_task(batcher.submit(first))
    await _settle()
    queued = [asyncio.create_task(batcher.submit(k)) for k in keys]
    await _settle()
    return held, queued


async def test_a_lone_key_is_written_at_once_and_alone() -> None:
    store = Store()
    batcher = Batcher(store.write)

    assert await batcher.submit(1) == "row 1"
    assert await batcher.submit(2) == "row 2"
    assert store.writes == [[1], [2]]


async def test_keys_arriving_during_a_write_share_the_next_one() -> None:
    store = Store()
    batcher = Batcher(store.write)

    first, rest = await _behind_a_write(store, batcher, 1, (2, 3, 4))
    assert store.writes == [[1]]  # 2..4 wait for the write in flight
    assert not any(t.done() for t in (first, *rest))

    store.gate.set()
    assert await asyncio.gather(first, *rest) == ["row 1", "row 2", "row 3", "row 4"]
    assert store.writes == [[1], [2, 3, 4]]


async def test_a_key_the_write_left_out_gets_none_and_a_repeated_key_both_answers() -> None:
    store = Store(missing=frozenset({2}))
    batcher = Batcher(store.write)
    first, waiting = await _behind_a_write(store, batcher, 9, (2, 3, 3))

    store.gate.set()
    assert await first == "row 9"
    assert await asyncio.gather(*waiting) == [None, "row 3", "row 3"]
    assert store.writes == [[9], [2, 3]]


async def test_a_key_the_database_refuses_fails_its_own_callers_only() -> None:
    store = Store(poison=frozenset({2}))
    batcher = Batcher(store.write, refused=(ValueError,))
    first, batch = await _behind_a_write(store, batcher, 9, (1, 2, 3, 2))

    store.gate.set()
    assert await first == "row 9"
    results = await asyncio.gather(*batch, return_exceptions=True)
    assert results[0] == "row 1"
    assert results[2] == "row 3"
    assert all(isinstance(results[i], ValueError) for i in (1, 3))
    # The batch failed as a whole, then each key was written alone.
    assert store.writes == [[9], [1, 2, 3], [1], [2], [3]]
    assert await batcher.submit(4) == "row 4"


async def test_a_batch_the_database_could_not_take_fails_at_once() -> None:
    store = Store()
    batcher = Batcher(store.write, refused=(ValueError,))
    first, batch = await _behind_a_write(store, batcher, 9, (1, 2, 3))
    store.unreachable = True

    store.gate.set()
    results = await asyncio.gather(first, *batch, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    # Not a refused value: no key is written again alone (each would fail the same way, in turn,
    # holding every later caller behind it).
    assert store.writes == [[9], [1, 2, 3]]


async def test_a_lone_key_whose_write_fails_gets_the_error() -> None:
    store = Store()
    batcher = Batcher(store.write)
    store.fail_next = True

    with pytest.raises(ConnectionError):
        await batcher.submit(1)
    assert await batcher.submit(2) == "row 2"
    assert store.writes == [[1], [2]]


async def test_batches_are_bounded() -> None:
    store = Store()
    store.gate.clear()
    batcher = Batcher(store.write, max_batch=3)
    calls = [asyncio.create_task(batcher.submit(k)) for k in range(8)]
    await _settle()

    store.gate.set()
    assert await asyncio.gather(*calls) == [f"row {k}" for k in range(8)]
    assert store.writes == [[0, 1, 2], [3, 4, 5], [6, 7]]


async def test_a_cancelled_caller_leaves_the_others_answered() -> None:
    store = Store()
    store.gate.clear()
    batcher = Batcher(store.write)
    calls = [asyncio.create_task(batcher.submit(k)) for k in (1, 2, 3)]
    await _settle()
    calls[1].cancel()

    store.gate.set()
    assert await calls[0] == "row 1"
    assert await calls[2] == "row 3"
    assert calls[1].cancelled()
    assert store.writes == [[1, 2, 3]]  # the write went ahead: a cancel does not undo a commit


async def test_callers_are_not_left_waiting_when_the_writer_is_cancelled() -> None:
    store = Store()
    store.gate.clear()
    batcher = Batcher(store.write)
    calls = [asyncio.create_task(batcher.submit(k)) for k in (1, 2)]
    await _settle()
    late = asyncio.create_task(batcher.submit(3))
    await _settle()

    writer = batcher._writer
    assert writer is not None
    writer.cancel()  # what the loop's shutdown does
    await _settle()
    assert all(t.cancelled() for t in (*calls, late))
    store.gate.set()
    assert await batcher.submit(4) == "row 4"  # a new writer starts for the next caller


@settings(max_examples=60, deadline=None)
@given(
    rounds=st.lists(st.lists(st.integers(0, 20), min_size=1, max_size=8), min_size=1, max_size=6),
    max_batch=st.integers(1, 5),
)
def test_every_caller_gets_its_own_keys_result(rounds: list[list[int]], max_batch: int) -> None:
    async def run() -> None:
        store = Store(missing=frozenset({0, 7}), poison=frozenset({13}))
        batcher = Batcher(store.write, refused=(ValueError,), max_batch=max_batch)
        calls: list[tuple[int, asyncio.Task[str | None]]] = []
        for keys in rounds:  # each round's keys arrive together, then the loop runs a little
            calls += [(k, asyncio.create_task(batcher.submit(k))) for k in keys]
            await asyncio.sleep(0)
        for key, call in calls:
            if key in store.poison:
                with pytest.raises(ValueError, match="out of range"):
                    await call
            else:
                assert await call == (None if key in store.missing else f"row {key}")
        assert all(0 < len(w) <= max_batch and len(set(w)) == len(w) for w in store.writes)
        # A batch is written again key by key only when it was refused, and then right after.
        i = 0
        while i < len(store.writes):
            write = store.writes[i]
            i += 1
            if len(write) > 1 and store.poison.intersection(write):
                assert store.writes[i : i + len(write)] == [[k] for k in write]
                i += len(write)

    # A loop of its own that leaves the thread's current loop alone (asyncio.run would unset it
    # under the other tests' fixtures).
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
