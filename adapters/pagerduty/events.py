"""The `Pager` port on PagerDuty's Events API v2: trigger, acknowledge and resolve with the incident key as the
dedup key, so a retry after a lost answer (a timeout after PagerDuty accepted the event) pages nobody twice.

    pager = PagerDutyEvents(url=settings.pagerduty.events_url)
    await pager.page(request=PageRequest(action="trigger", incident_key="INC-7", address=routing_key, summary="…"))

202: accepted. 400: the payload is invalid (permanent, PagerDuty's errors in the message). 429: rate limited
(retry after `Retry-After`, else 30 s). 5xx and transport errors: retried by the outbox.
"""

from __future__ import annotations

import httpx

from bot.ports import DeliveryError, PagerCapabilities, PageRequest

RATE_LIMIT_PAUSE = 30.0


class PagerDutyEvents:
    channel = "pagerduty"
    capabilities = PagerCapabilities(acknowledge=True, inbound_acks=True)

    def __init__(self, *, url: str, client: httpx.AsyncClient | None = None, timeout: float = 10.0) -> None:
        self._url = url
        self._client = client or httpx.AsyncClient(timeout=timeout)

    async def page(self, *, request: PageRequest) -> str:
        body: dict[str, object] = {"routing_key": request.address, "event_action": request.action,
                                   "dedup_key": request.incident_key}
        if request.action == "trigger":
            body["payload"] = {"summary": request.summary[:1024], "source": "warroom",
                               "severity": request.severity}
        try:
            response = await self._client.post(self._url, json=body)
        except httpx.HTTPError as problem:  # the event may have landed: the dedup key makes the retry harmless
            raise DeliveryError(f"PagerDuty unreachable: {problem!r}") from None
        if response.status_code == 202:
            try:
                return str(response.json().get("dedup_key") or request.incident_key)
            except ValueError:
                return request.incident_key
        detail = _errors(response)
        if response.status_code == 429:
            raise DeliveryError(f"PagerDuty rate limit: {detail}", retry_after=_retry_after(response), code=429)
        if response.status_code >= 500:
            raise DeliveryError(f"PagerDuty {response.status_code}: {detail}", code=response.status_code)
        raise DeliveryError(f"PagerDuty refused the event ({response.status_code}): {detail}", permanent=True,
                            code=response.status_code)

    async def aclose(self) -> None:
        await self._client.aclose()


def _errors(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    errors = data.get("errors") if isinstance(data, dict) else None
    message = data.get("message", "") if isinstance(data, dict) else ""
    return "; ".join([str(message), *map(str, errors or [])]).strip("; ")[:300]


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("Retry-After", RATE_LIMIT_PAUSE)), 0.0)
    except ValueError:
        return RATE_LIMIT_PAUSE
