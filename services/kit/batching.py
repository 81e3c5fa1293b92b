"""Group commit: concurrent calls for one kind of write share a statement.

A caller submits a key and waits for its result. When nothing is being written, the key is
written at once, alone (no added latency at low load); while a write is in flight, keys arriving
meanwhile wait and go together in the next one. So the batch grows with the load and with the
database's round-trip time, and each caller still gets its answer only after the write that
carries its key has committed: what the caller does next is the same as with a statement of its
own. At most one write is in flight per batcher, which also bounds the connections it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batcher(Generic[K, V]):
    """`write(keys)` performs one batch as one statement (all or nothing) and returns the
    result of each key it found; a key it leaves out gets None. A failure fails the callers of
    that batch; the next batch is written as usual.

    `refused` names the errors that one key's own value can cause (the database refusing a row):
    a batch of several that fails with one of them is written again key by key, so only the
    callers of the key whose own write fails get the error. Any other failure (the database
    unreachable) fails the batch at once: writing each key again would hold every later caller
    behind one failing write per key."""

    def __init__(
        self,
        write: Callable[[list[K]], Awaitable[Mapping[K, V]]],
        *,
        refused: tuple[type[Exception], ...] = (),
        max_batch: int = 200,
    ) -> None:
        self._write = write
        self._refused = refused
        self._max_batch = max_batch
        # Per key, every caller waiting for it (one task can be submitted twice concurrently,
        # e.g. a create retried under the same idempotency key).
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, key: K) -> V | None:
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: dict[K, list[asyncio.Future[V | None]]] = {}
        try:
            while self._waiting:
                keys = list(islice(self._waiting, self._max_batch))
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    results = await self._write(keys)
                except Exception as error:
                    if len(keys) > 1 and isinstance(error, self._refused):
                        await self._write_alone(batch)
                    else:
                        _settle(batch, error=error)
                else:
                    _settle(batch, results=results)
                batch = {}
        finally:
            # Cancelled (the loop is shutting down): nobody is left waiting forever.
            for futures in (*batch.values(), *self._waiting.values()):
                for future in futures:
                    future.cancel()
            self._waiting.clear()
            self._writer = None

    async def _write_alone(self, batch: Mapping[K, list[asyncio.Future[V | None]]]) -> None:
        # The failed statement changed nothing, so writing a key again is safe.
        for key, futures in batch.items():
            try:
                results = await self._write([key])
            except Exception as error:
                _settle({key: futures}, error=error)
            else:
                _settle({key: futures}, results=results)


def _settle(
    batch: Mapping[K, list[asyncio.Future[V | None]]],
    *,
    results: Mapping[K, V] | None = None,
    error: Exception | None = None,
) -> None:
    for key, futures in batch.items():
        for future in futures:
            if future.done():  # its caller was cancelled
                continue
            if error is not None:
                future.set_exception(error)
            else:
                assert results is not None
                future.set_result(results.get(key))
