"""Operations over HTTP: alert intake, the deploy-freeze API for pipelines, Prometheus metrics.

    POST /alerts/alertmanager   Alertmanager webhook (version 4)        Bearer WARROOM_ALERT_TOKEN
    POST /alerts/generic        documented JSON (bot.alerts.rules.parse_generic) Bearer WARROOM_ALERT_TOKEN
    GET  /api/freeze            423 while frozen, 200 otherwise          Bearer WARROOM_FREEZE_TOKEN
    GET  /metrics               Prometheus text format                  Bearer WARROOM_METRICS_TOKEN, if set

Each endpoint has its own token so a CI pipeline that may ask "are deploys frozen?" cannot raise alerts. An
endpoint whose token is not configured answers 503 saying which variable to set (never open by default).

Metrics: counts that describe incidents are read from the database at scrape time (correct on every replica);
webhook rejects, alerts received and command latency are this process's own counters, kept as plain numbers and
turned into Prometheus metric families when /metrics is scraped, so prometheus_client (≈5 MB) is imported only
by a server that is scraped. Starlette is imported inside `ops_routes()` so `bot.app.bootstrap` can build
`PrometheusMetrics` without the HTTP extras installed.
"""

from __future__ import annotations

import bisect
import hmac
import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bot.ports import MetricsSnapshot

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

COMMAND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REMINDER_KINDS = ("update_nudge", "ack_escalation", "resolution_escalation", "postmortem_due", "action_overdue",
                  "customer_update_due")
OUTBOX_BACKLOG = ("pending", "sending", "failed")
ALERT_GROUP_STATES = ("declared", "proposed", "ignored")


class PrometheusMetrics:
    """The process-local half of /metrics, behind the core's `Metrics` port. Plain counters per instance (no
    global registry), so several apps in one process (tests) never collide."""

    def __init__(self) -> None:
        self.webhook_rejects: Counter[tuple[str, str]] = Counter()  # (endpoint, reason)
        self.alerts: Counter[tuple[str, str]] = Counter()  # (endpoint, alert status)
        # (command, outcome) → per-bucket counts (not cumulative; the last is above every bound), count, sum
        self.commands: dict[tuple[str, str], tuple[list[int], list[float]]] = {}

    def command_finished(self, *, command: str, seconds: float, ok: bool) -> None:
        buckets, totals = self.commands.setdefault((command, "ok" if ok else "error"),
                                                   ([0] * (len(COMMAND_BUCKETS) + 1), [0, 0.0]))
        buckets[bisect.bisect_left(COMMAND_BUCKETS, seconds)] += 1  # a bucket counts values <= its bound
        totals[0] += 1
        totals[1] += seconds

    def webhook_rejected(self, *, endpoint: str, reason: str) -> None:
        self.webhook_rejects[(endpoint, reason)] += 1

    def alerts_received(self, *, source: str, status: str, count: int) -> None:
        self.alerts[(source, status)] += count

    def families(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        go_float: Callable[[float], str] = floatToGoString  # prometheus_client leaves it unannotated

        rejects = CounterMetricFamily("warroom_webhook_rejects", "Webhook requests refused, by endpoint and reason",
                                      labels=["endpoint", "reason"])
        for labels, value in sorted(self.webhook_rejects.items()):
            rejects.add_metric(list(labels), value)
        yield rejects
        alerts = CounterMetricFamily("warroom_alerts_received", "Alerts received, by endpoint and alert status",
                                     labels=["endpoint", "status"])
        for labels, value in sorted(self.alerts.items()):
            alerts.add_metric(list(labels), value)
        yield alerts
        commands = HistogramMetricFamily("warroom_command_duration_seconds",
                                         "Time to run an /incident command, by command and outcome",
                                         labels=["command", "outcome"])
        for labels, (buckets, (_count, total)) in sorted(self.commands.items()):
            cumulative, running = [], 0
            for bound, n in zip((*COMMAND_BUCKETS, float("inf")), buckets, strict=True):
                running += n
                cumulative.append((go_float(bound), running))
            commands.add_metric(list(labels), cumulative, sum_value=total)
        yield commands


class _Scrape:
    """One scrape: the database snapshot as metric families, then the process-local counters."""

    def __init__(self, snapshot: MetricsSnapshot, severities: Sequence[str], local: PrometheusMetrics | None) -> None:
        self._snapshot = snapshot
        self._severities = severities
        self._local = local

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self._snapshot
        open_incidents = GaugeMetricFamily("warroom_open_incidents", "Open incidents (declared, acknowledged or "
                                           "mitigated) by current severity", labels=["severity"])
        for severity in [*self._severities, *sorted(set(s.open_by_severity) - set(self._severities))]:
            open_incidents.add_metric([severity], s.open_by_severity.get(severity, 0))
        yield open_incidents
        yield CounterMetricFamily("warroom_incidents_declared", "Incidents declared, all time",
                                  value=s.declared_total)
        fired = CounterMetricFamily("warroom_reminders_fired", "Reminders fired, by kind", labels=["kind"])
        for kind in [*REMINDER_KINDS, *sorted(set(s.reminders_fired) - set(REMINDER_KINDS))]:
            fired.add_metric([kind], s.reminders_fired.get(kind, 0))
        yield fired
        yield CounterMetricFamily("warroom_escalations", "Escalations posted (acknowledge and resolution targets "
                                  "missed)", value=s.escalations_total)
        outbox = GaugeMetricFamily("warroom_outbox_messages", "Outbox messages not delivered yet, by status",
                                   labels=["status"])
        for status in [*OUTBOX_BACKLOG, *sorted(set(s.outbox) - set(OUTBOX_BACKLOG))]:
            outbox.add_metric([status], s.outbox.get(status, 0))
        yield outbox
        yield GaugeMetricFamily("warroom_deploy_freeze_incidents", "Open incidents with the deploy freeze on "
                                "(GET /api/freeze answers 423 while this is above 0)", value=s.frozen)
        groups = GaugeMetricFamily("warroom_alert_groups", "Alert groups by what became of them", labels=["state"])
        for state in [*ALERT_GROUP_STATES, *sorted(set(s.alert_groups) - set(ALERT_GROUP_STATES))]:
            groups.add_metric([state], s.alert_groups.get(state, 0))
        yield groups
        if self._local is not None:
            yield from self._local.families()


def render_metrics(snapshot: MetricsSnapshot, *, severities: Sequence[str],
                   metrics: PrometheusMetrics | None = None) -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(_Scrape(snapshot, severities, metrics))


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    secret = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return secret or None


def ops_routes(app: Any) -> list[BaseRoute]:
    """The routes for a built `bot.app.bootstrap.Warroom`: `routes += ops_routes(app)` in `warroom serve`."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from bot.alerts.rules import AlertPayloadError, parse_alertmanager, parse_generic

    settings = app.settings
    metrics: PrometheusMetrics | Any = app.metrics
    alert_token = _secret(settings.operations.alert_token)
    freeze_token = _secret(settings.operations.freeze_token)
    metrics_token = _secret(settings.operations.metrics_token)
    severities = app.service.ladder.level_names

    def refuse(endpoint: str, reason: str, status: int, error: str, **headers: str) -> Response:
        metrics.webhook_rejected(endpoint=endpoint, reason=reason)
        return JSONResponse({"error": error}, status_code=status, headers=headers or None)

    def check(request: Request, endpoint: str, expected: str | None, variable: str,
              *, required: bool = True) -> Response | None:
        if expected is None:
            if not required:
                return None
            return refuse(endpoint, "not_configured", 503,
                          f"{variable} is not set on the server, so this endpoint is off; set it and restart.")
        given = _bearer(request.headers.get("authorization"))
        if given is None or not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            return refuse(endpoint, "unauthorized", 401, "missing or wrong bearer token (Authorization: Bearer …)",
                          **{"WWW-Authenticate": 'Bearer realm="warroom"'})
        return None

    async def intake(request: Request, endpoint: str, parse: Any) -> Response:
        refused = check(request, endpoint, alert_token, "WARROOM_ALERT_TOKEN")
        if refused is not None:
            return refused
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError as problem:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            detail = str(problem).splitlines()[0][:200] if str(problem) else "unreadable"
            return refuse(endpoint, "bad_json", 400, f"body is not valid JSON: {detail}")
        except RecursionError:
            return refuse(endpoint, "bad_json", 400, "body is not valid JSON: nested too deeply")
        try:
            parsed = parse(payload)
        except AlertPayloadError as problem:
            return refuse(endpoint, "bad_payload", 400, str(problem))
        except RecursionError:
            return refuse(endpoint, "bad_payload", 400, "payload nested too deeply")
        batches = parsed if isinstance(parsed, list) else [parsed]
        for status in ("firing", "resolved"):
            count = sum(1 for batch in batches for alert in batch.alerts if alert.status == status)
            if count:
                metrics.alerts_received(source=endpoint, status=status, count=count)
        result = await app.alerts.receive(batches)
        return JSONResponse(result.as_json())

    async def alertmanager(request: Request) -> Response:
        return await intake(request, "alertmanager", parse_alertmanager)

    async def generic(request: Request) -> Response:
        return await intake(request, "generic", parse_generic)

    async def freeze(request: Request) -> Response:
        refused = check(request, "freeze", freeze_token, "WARROOM_FREEZE_TOKEN")
        if refused is not None:
            return refused
        status = await app.operations.freeze()
        return JSONResponse(status.as_json(), status_code=423 if status.frozen else 200,
                            headers={"Cache-Control": "no-store"})

    async def prometheus(request: Request) -> Response:
        refused = check(request, "metrics", metrics_token, "WARROOM_METRICS_TOKEN", required=False)
        if refused is not None:
            return refused
        from prometheus_client import CONTENT_TYPE_LATEST

        snapshot = await app.operations.metrics()
        local = metrics if isinstance(metrics, PrometheusMetrics) else None
        return Response(render_metrics(snapshot, severities=severities, metrics=local),
                        media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/alerts/alertmanager", alertmanager, methods=["POST"]),
        Route("/alerts/generic", generic, methods=["POST"]),
        Route("/api/freeze", freeze, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]


__all__ = ["PrometheusMetrics", "ops_routes", "render_metrics"]
