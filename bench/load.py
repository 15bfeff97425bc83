"""The load process: signed Slack requests over HTTP, open loop (fixed rates) or closed loop (N in flight).

    python -m bench.load < spec.json > result.json

It runs in its own process, never in the server's, and imports nothing of warroom. Latency is measured
from the moment a request was *scheduled* (open loop), so a server that falls behind cannot hide it by
slowing the generator down (no coordinated omission).

spec: {"mode": "open"|"closed", "targets": [url, ...], "duration": s, "command_rate": r, "event_rate": r,
       "concurrency": n, "command_share": f, "threads": [thread_ts, ...], "run": "id", "users": n}
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
from collections import Counter

import aiohttp

from bench.common import command_body, message_event_body, signed_headers


class Load:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.targets = itertools.cycle(spec["targets"])
        self.run = spec["run"]
        self.threads = spec["threads"]
        self.users = [f"U0BENCH{n:04d}" for n in range(spec.get("users", 8))]
        self.commands = itertools.count(1)
        self.events = itertools.count(1)
        self.latency: dict[str, list[float]] = {"command": [], "event": []}
        self.status: dict[str, Counter] = {"command": Counter(), "event": Counter()}
        self.declared = 0
        self.events_acked: list[int] = []
        self.lag = 0.0
        self.errors: Counter = Counter()

    async def command(self, http: aiohttp.ClientSession, scheduled: float) -> None:
        n = next(self.commands)
        body = command_body(f'declare P2 "bench {self.run} {n}"', user=random.choice(self.users),
                            trigger=f"trig-{self.run}-{n}")
        await self._send(http, "command", body, "application/x-www-form-urlencoded", scheduled)

    async def event(self, http: aiohttp.ClientSession, scheduled: float) -> None:
        n = next(self.events)
        ts = f"1800000000.{n:06d}" if n < 1000000 else f"{1800000000 + n // 1000000}.{n % 1000000:06d}"
        body = message_event_body(event_id=f"Ev{self.run}x{n}", text=f"bench {self.run} message {n}",
                                  user=random.choice(self.users), thread_ts=self.threads[n % len(self.threads)],
                                  ts=ts)
        if await self._send(http, "event", body, "application/json", scheduled):
            self.events_acked.append(n)

    async def _send(self, http: aiohttp.ClientSession, kind: str, body: str, content_type: str,
                    scheduled: float) -> bool:
        try:
            async with http.post(f"{next(self.targets)}/slack/events", data=body.encode(),
                                 headers=signed_headers(body, content_type)) as response:
                payload = await response.read()
                status = response.status
        except Exception as problem:
            self.errors[type(problem).__name__] += 1
            self.status[kind]["error"] += 1
            return False
        self.latency[kind].append(time.monotonic() - scheduled)
        self.status[kind][str(status)] += 1
        if status == 200 and kind == "command" and b"Declared INC-" in payload:
            self.declared += 1
        return status == 200

    async def open_loop(self, http: aiohttp.ClientSession) -> None:
        duration = self.spec["duration"]
        rates = [(self.command, self.spec["command_rate"]), (self.event, self.spec["event_rate"])]
        schedule = [(0.0, i) for i, (_, rate) in enumerate(rates) if rate > 0]
        start = time.monotonic()
        tasks: set[asyncio.Task] = set()
        while schedule:
            schedule.sort()
            offset, i = schedule[0]
            if offset >= duration:
                schedule.pop(0)
                continue
            due = start + offset
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            else:
                self.lag = max(self.lag, now - due)
            send, rate = rates[i]
            task = asyncio.create_task(send(http, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            schedule[0] = (offset + 1.0 / rate, i)
        await asyncio.gather(*list(tasks))

    async def closed_loop(self, http: aiohttp.ClientSession) -> None:
        end = time.monotonic() + self.spec["duration"]
        share = self.spec.get("command_share", 1 / 11)

        async def worker() -> None:
            while time.monotonic() < end:
                send = self.command if random.random() < share else self.event
                await send(http, time.monotonic())

        await asyncio.gather(*(worker() for _ in range(self.spec["concurrency"])))

    async def main(self) -> dict:
        connector = aiohttp.TCPConnector(limit=self.spec.get("connections", 256), force_close=False)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            started = time.monotonic()
            if self.spec["mode"] == "open":
                await self.open_loop(http)
            else:
                await self.closed_loop(http)
            elapsed = time.monotonic() - started
        return {"elapsed": elapsed, "latency": self.latency, "status": {k: dict(v) for k, v in self.status.items()},
                "declared": self.declared, "events_sent": next(self.events) - 1,
                "commands_sent": next(self.commands) - 1, "events_acked": self.events_acked,
                "max_schedule_lag": self.lag, "errors": dict(self.errors)}


def main() -> None:
    spec = json.load(sys.stdin)
    result = asyncio.run(Load(spec).main())
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
