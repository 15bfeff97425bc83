"""Group commit: many small writes that arrive together become one transaction.

On SQLite every transaction takes the single write lock, so a server that commits each chat message on its own
caps at a few hundred transactions a second however little each one does. `GroupCommit` queues what callers
submit; one worker runs everything queued so far as one batch (one transaction), then the next batch with
whatever arrived meanwhile. There is no timer: a lone message is written at once, a burst shares commits.

Under load a batch may wait `delay` seconds for company before it runs (PostgreSQL's commit_delay does the
same): only when the previous batch started less than `busy_window` ago, so a lone message on a quiet server is
never held back. At 500 chat messages a second a batch then carries a few messages instead of one, which is most
of the CPU a message costs.

Each caller still gets its own result only after its batch committed, so "answered" keeps meaning "stored".
If a batch fails, its items are retried one at a time, so one bad item fails alone and the others are kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger("warroom.batching")

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(self, run: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]], *, max_batch: int = 256,
                 delay: float = 0.0, busy_window: float = 0.05, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self._run = run
        self._max_batch = max_batch
        self._delay = delay
        self._busy_window = busy_window
        self._clock = clock
        self._sleep = sleep
        self._last_started: float | None = None
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0  # how many batches ran (for tests and metrics)

    async def submit(self, item: Item) -> Result:
        """Queue `item` and wait until the batch it went into has run; its result, or its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._work())
        return await future

    async def _work(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._queue:
                now = self._clock()
                busy = self._last_started is not None and now - self._last_started < self._busy_window
                if self._delay and busy and len(self._queue) < self._max_batch:
                    await self._sleep(self._delay)  # let the requests already on their way join this batch
                self._last_started = self._clock()
                batch = self._queue[:self._max_batch]
                del self._queue[:self._max_batch]
                await self._run_batch(batch)
        except BaseException as stopped:  # cancelled at shutdown: nobody may wait forever
            error = RuntimeError(f"stopped before this was known to be written: {stopped!r}")
            for _, future in (*batch, *self._queue):
                _fail(future, error)
            self._queue.clear()
            raise

    async def _run_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        self.batches += 1
        try:
            results = await self._run([item for item, _ in batch])
        except Exception as problem:
            if len(batch) == 1:
                _fail(batch[0][1], problem)
                return
            log.warning("a batch of %d failed (%r); writing its items one at a time", len(batch), problem)
            for one in batch:
                await self._run_batch([one])
            return
        if len(results) != len(batch):
            error = RuntimeError(f"batch of {len(batch)} returned {len(results)} results")
            for _, future in batch:
                _fail(future, error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _resolve(future, result)


def _resolve(future: asyncio.Future[Result], result: Result) -> None:
    if not future.done():  # its caller was cancelled; the write happened anyway, which a retry must tolerate
        future.set_result(result)


def _fail(future: asyncio.Future[Result], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


__all__ = ["GroupCommit"]
