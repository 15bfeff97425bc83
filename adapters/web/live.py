"""Live timelines for open incident pages: one poller for all of them, however many pages are open.

Every `interval` the poller reads timeline rows newer than the last it saw, for the incidents someone is
watching, and hands each to that incident's subscribers. Reading the database (not an in-process signal)
means a message captured by another replica, or before a restart, reaches the page too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

log = logging.getLogger("warroom.web")


class LiveTimeline:
    def __init__(self, views: Any, *, interval: float = 0.25) -> None:
        self._views = views
        self.interval = interval
        self._subscribers: dict[int, set[asyncio.Queue[Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._last: int | None = None
        self.closed = asyncio.Event()

    @property
    def watchers(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())

    def subscribe(self, number: int) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1000)
        self._subscribers.setdefault(number, set()).add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._poll())
        return queue

    def unsubscribe(self, number: int, queue: asyncio.Queue[Any]) -> None:
        queues = self._subscribers.get(number)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[number]

    async def _poll(self) -> None:
        if self._last is None:
            self._last = await self._views.last_timeline_id()
        while self._subscribers and not self.closed.is_set():
            try:
                rows = await self._views.timeline_after(self._last, list(self._subscribers))
            except Exception:  # the database restarting: try again on the next beat
                log.warning("live timeline: reading new events failed; retrying", exc_info=True)
                rows = []
            for number, event in rows:
                self._last = max(self._last, event.id or 0)
                for queue in list(self._subscribers.get(number, ())):
                    with contextlib.suppress(asyncio.QueueFull):  # a stuck page misses events, not the server
                        queue.put_nowait(event)
            if len(rows) < 500:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.closed.wait(), self.interval)
        if not self._subscribers:
            self._last = None  # next time, start from the newest row again

    async def close(self) -> None:
        self.closed.set()
        for queues in self._subscribers.values():
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
