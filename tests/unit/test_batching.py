"""GroupCommit: what arrives together is written together; every caller gets its own result or error."""

from __future__ import annotations

import asyncio

import pytest

from bot.delivery.batching import GroupCommit


class Store:
    """Runs batches the way a unit of work would: all items or none."""

    def __init__(self, poison: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.poison = poison
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def write(self, items):
        await self.release.wait()
        if self.poison & set(items):
            raise ValueError(f"cannot store {sorted(self.poison & set(items))}")
        self.batches.append(list(items))
        return [f"stored {item}" for item in items]


async def test_a_lone_item_is_written_at_once_in_a_batch_of_its_own():
    store = Store()
    commits = GroupCommit(store.write)

    assert await commits.submit("a") == "stored a"
    assert store.batches == [["a"]]


async def test_items_that_arrive_while_a_batch_is_written_share_the_next_one():
    store = Store()
    store.release.clear()
    commits = GroupCommit(store.write, max_batch=3)
    first = asyncio.create_task(commits.submit("a"))
    await asyncio.sleep(0)  # the worker takes "a" and waits on the store
    rest = [asyncio.create_task(commits.submit(x)) for x in "bcde"]
    await asyncio.sleep(0)
    store.release.set()

    assert await first == "stored a"
    assert [await task for task in rest] == ["stored b", "stored c", "stored d", "stored e"]
    assert store.batches == [["a"], ["b", "c", "d"], ["e"]]


async def test_a_failing_item_fails_alone_and_the_rest_of_its_batch_is_stored():
    store = Store(poison={"bad"})
    store.release.clear()
    commits = GroupCommit(store.write)
    tasks = [asyncio.create_task(commits.submit(x)) for x in ("a", "bad", "c")]
    await asyncio.sleep(0)
    store.release.set()

    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert results[0] == "stored a" and results[2] == "stored c"
    assert isinstance(results[1], ValueError) and "cannot store ['bad']" in str(results[1])
    assert store.batches == [["a"], ["c"]]


async def test_a_cancelled_caller_does_not_stop_the_others():
    store = Store()
    store.release.clear()
    commits = GroupCommit(store.write)
    leaving = asyncio.create_task(commits.submit("a"))
    staying = asyncio.create_task(commits.submit("b"))
    await asyncio.sleep(0)
    leaving.cancel()
    store.release.set()

    assert await staying == "stored b"
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert store.batches == [["a", "b"]]  # written anyway: callers must tolerate a write they did not see


class Ticks:
    """A clock the test moves, and a sleep that records how long it was asked to wait (and moves the clock)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_under_load_a_batch_waits_its_delay_for_company_but_a_lone_item_on_a_quiet_server_does_not():
    store, ticks = Store(), Ticks()
    commits = GroupCommit(store.write, delay=0.005, busy_window=0.05, clock=ticks, sleep=ticks.sleep)

    assert await commits.submit("quiet") == "stored quiet"
    assert ticks.slept == []  # nothing ran recently: written at once

    ticks.now += 0.01  # the next message comes 10 ms later: the server is busy
    first = asyncio.create_task(commits.submit("a"))
    await asyncio.sleep(0)  # the worker starts and waits its delay
    second = asyncio.create_task(commits.submit("b"))  # arrives during the delay
    assert [await first, await second] == ["stored a", "stored b"]
    assert ticks.slept == [0.005]
    assert store.batches == [["quiet"], ["a", "b"]]

    ticks.now += 1.0  # a second of silence: quiet again
    assert await commits.submit("later") == "stored later"
    assert ticks.slept == [0.005]
