"""Small helpers shared by the driver and the helper processes: Slack request signing, ports, statistics.

Only the standard library here: the load process imports this and nothing of warroom.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import statistics
import time
from urllib.parse import urlencode

CHANNEL = "C0INCIDENTS"
TEAM = "T0WARROOM"
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def signed_headers(body: str, content_type: str, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def command_body(text: str, *, user: str, trigger: str, channel: str = CHANNEL) -> str:
    return urlencode({"command": "/incident", "text": text, "user_id": user, "channel_id": channel,
                      "team_id": TEAM, "trigger_id": trigger, "response_url": "http://127.0.0.1:9/unused"})


def message_event_body(*, event_id: str, text: str, user: str, thread_ts: str, ts: str,
                       channel: str = CHANNEL) -> str:
    return json.dumps({"token": "legacy", "type": "event_callback", "team_id": TEAM, "api_app_id": "A0WARROOM",
                       "event_id": event_id, "event_time": int(time.time()),
                       "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}],
                       "event": {"type": "message", "channel": channel, "user": user, "channel_type": "channel",
                                 "text": text, "ts": ts, "event_ts": ts, "thread_ts": thread_ts}})


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict[str, float | None]:
    """Median with min and max: how every result is reported over several runs."""
    clean = [v for v in values if v is not None]
    if not clean:
        return {"median": None, "min": None, "max": None, "runs": 0}
    return {"median": statistics.median(clean), "min": min(clean), "max": max(clean), "runs": len(clean)}
