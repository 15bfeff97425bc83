"""What every fake platform API shares: it records what it received and lets a test wait for a condition on
those records, woken by each new record instead of polling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class Recording:
    """Mixin: the fake notifies `_changed` after each record; tests `await fake.wait_for(predicate)`."""

    name = "fake API"
    _changed: asyncio.Condition | None = None

    def _recorded(self) -> str:
        """One line per recorded request, for the message when a wait times out."""
        raise NotImplementedError

    async def wait_for(self, predicate: Callable[[Any], Any], *, timeout: float = 5.0) -> Any:
        """Wait until `predicate(fake)` is truthy and return its value."""
        assert self._changed is not None, "start() the fake first"
        result: list[Any] = []

        def check() -> bool:
            value = predicate(self)
            if value:
                result.append(value)
            return bool(value)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(check), timeout)
            except TimeoutError:
                raise AssertionError(f"{self.name}: condition not met within {timeout}s; "
                                     f"received:\n{self._recorded()}") from None
        return result[-1]
