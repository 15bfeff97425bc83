"""warroom's whole HTTP surface in process, for the tests that throw bad input at every route (edges, fuzz)."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa

from adapters.http import build_http_app, slack_routes
from adapters.memory import MemoryWhatsApp
from adapters.ops_http import ops_routes
from adapters.slack.app import SlackInbound
from adapters.slack.chat import SlackChat, make_web_client
from adapters.whatsapp.routes import whatsapp_routes
from bot.app.bootstrap import build
from bot.ports import ManualClock
from tests.fakes.slack_api import FakeSlackApi
from tests.support import START, make_settings

SLACK_SECRET, WA_SECRET, VERIFY = "edge-slack-secret", "edge-wa-secret", "edge-verify-token"
ALERT, FREEZE, METRICS = "edge-alert-token", "edge-freeze-token", "edge-metrics-token"
TABLES = ["incident", "timeline_event", "inbound_delivery", "outbox", "contact", "brief"]


class Server:
    """warroom's whole HTTP surface on one app: Slack (Bolt), WhatsApp, alert intake, freeze, metrics."""

    async def start(self, tmp_path: Path) -> Server:
        self.fake = await FakeSlackApi().start()
        config = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'edges.db'}",
                          postmortem_dir=tmp_path / "pm", slack_bot_token="xoxb-test",
                          slack_signing_secret=SLACK_SECRET, slack_api_url=self.fake.url, alert_token=ALERT,
                          freeze_token=FREEZE, metrics_token=METRICS)
        clock = ManualClock(START)
        chat = SlackChat(client=make_web_client(token="xoxb-test", base_url=self.fake.url, backoff=0.01, jitter=0.01),
                         incident_mode="thread", announce_channel=None, clock=clock)
        self.app = await build(config, chat={"slack": chat}, clock=clock, messenger=MemoryWhatsApp())
        self.inbound = SlackInbound(service=self.app.service, chat=chat, signing_secret=SLACK_SECRET)
        self.asgi = build_http_app([
            *slack_routes(self.inbound.app),
            *whatsapp_routes(verify_token=VERIFY, app_secret=WA_SECRET, on_event=self.app.operators.customer_event),
            *ops_routes(self.app)])
        # raise_app_exceptions=False: an exception in the app shows as the 500 a real server would answer
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.asgi, raise_app_exceptions=False),
                                      base_url="http://warroom.test")
        return self

    async def stored_rows(self) -> dict[str, int]:
        async with self.app.engine.connect() as conn:
            return {t: (await conn.execute(sa.text(f"SELECT count(*) FROM {t}"))).scalar() for t in TABLES}

    async def stop(self) -> None:
        await self.inbound.close()
        await self.http.aclose()
        await self.app.close()
        await self.fake.close()


