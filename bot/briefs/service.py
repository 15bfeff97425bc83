"""Customer briefs over WhatsApp: link affected tenants, preview a brief, send it on confirm, track delivery.

The sending itself goes through the outbox (one row per recipient), so a rate limit or an outage delays a
brief instead of losing it, and every recipient's outcome lands in the incident's timeline.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.briefs.templates import (
    Brief,
    Contact,
    Recipient,
    is_opt_in,
    is_opt_out,
    normalize_phone,
    normalize_tenant,
    render_brief,
)
from bot.incident import commands as cmd
from bot.incident.domain import BOT_AUTHOR, DomainError, EventKind, Incident
from bot.ports import (
    Button,
    Clock,
    CustomerMessageReceived,
    CustomerMessageStatus,
    CustomerMessenger,
    DeliveryError,
    Field,
    JsonObject,
    Message,
    Outbound,
    OutboxItem,
    Reply,
    UnitOfWork,
    UnitOfWorkFactory,
)
from playbooks.loader import Playbooks
from playbooks.schema import BriefTemplate

log = logging.getLogger("warroom.briefs")
PLATFORM = "whatsapp"


class BriefService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, playbooks: Playbooks,
                 queue: Callable[..., Awaitable[None]], messenger: CustomerMessenger | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._playbooks = playbooks
        self._queue = queue  # IncidentService._queue: a thread post in the same unit of work
        self.messenger = messenger

    # -- contacts -----------------------------------------------------------------------------------------

    async def add_contact(self, *, tenant: str, name: str, phone: str) -> Contact:
        """Validated (tenant name, E.164 number) and stored; a duplicate raises ValueError saying so."""
        tenant, phone, name = normalize_tenant(tenant), normalize_phone(phone), name.strip()
        if not name:
            raise ValueError("a contact needs a name")
        async with self._uow() as uow:
            contact = await uow.customers.add_contact(tenant=tenant, name=name[:200], phone=phone,
                                                      now=self._clock.now())
            await uow.commit()
        return contact

    async def remove_contact(self, *, phone: str, tenant: str | None = None) -> int:
        phone = normalize_phone(phone)
        async with self._uow() as uow:
            removed = await uow.customers.remove_contact(phone=phone,
                                                         tenant=normalize_tenant(tenant) if tenant else None,
                                                         now=self._clock.now())
            await uow.commit()
        return removed

    async def contacts(self, tenant: str | None = None) -> list[Contact]:
        async with self._uow() as uow:
            return await uow.customers.contacts(normalize_tenant(tenant) if tenant else None)

    async def import_contacts(self, csv_text: str) -> tuple[int, list[str]]:
        """CSV with a header `tenant,name,phone`. All rows are checked first; one bad row imports nothing."""
        reader = csv.DictReader(io.StringIO(csv_text))
        missing = {"tenant", "name", "phone"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"CSV header must have tenant,name,phone; missing {', '.join(sorted(missing))}")
        rows, problems = [], []
        for line, row in enumerate(reader, start=2):
            try:
                rows.append((normalize_tenant(row["tenant"] or ""), (row["name"] or "").strip(),
                             normalize_phone(row["phone"] or "")))
                if not rows[-1][1]:
                    raise ValueError("a contact needs a name")
            except ValueError as problem:
                problems.append(f"line {line}: {problem}")
        if problems:
            raise ValueError("nothing imported; fix these rows: " + "; ".join(problems))
        added, skipped = 0, []
        async with self._uow() as uow:
            existing = {(c.tenant, c.phone) for c in await uow.customers.contacts()}
            for tenant, name, phone in rows:
                if (tenant, phone) in existing:
                    skipped.append(f"{phone} ({tenant}) already present")
                    continue
                await uow.customers.add_contact(tenant=tenant, name=name, phone=phone, now=self._clock.now())
                existing.add((tenant, phone))
                added += 1
            await uow.commit()
        return added, skipped

    # -- commands ---------------------------------------------------------------------------------------

    async def known_tenants(self, uow: UnitOfWork, tenants: tuple[str, ...]) -> list[str]:
        known = await uow.customers.tenants()
        unknown = [t for t in tenants if t not in known]
        if unknown:
            raise DomainError(f"Unknown tenant{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}. Known tenants: "
                              f"{', '.join(known) or 'none yet'} (add contacts with `warroom contacts add`).")
        return list(tenants)

    def template_for(self, incident: Incident, name: str | None, briefed_before: bool) -> BriefTemplate:
        briefs = self._playbooks.briefs
        if name is not None:
            if name not in briefs:
                raise DomainError(f"No brief template '{name}'. Templates: {', '.join(sorted(briefs))}.")
            return briefs[name]
        kind = ("resolved" if not incident.status.is_open else "update" if briefed_before else "investigating")
        for template in sorted(briefs.values(), key=lambda t: t.name):
            if template.kind == kind:
                return template
        raise DomainError(f"No brief template of kind '{kind}' in the playbooks.")

    async def prepare(self, uow: UnitOfWork, *, incident: Incident, command: cmd.PrepareBrief, by: str,
                      last_status: str | None, cadence: timedelta | None) -> Brief:
        if command.target == ("all-affected",):
            tenants = list(incident.tenants)
            if not tenants:
                raise DomainError(f"{incident.key} has no affected customers yet: /incident affects acme,globex.")
        else:
            tenants = await self.known_tenants(uow, command.target)
        contacts: list[Contact] = []
        for tenant in tenants:
            contacts += await uow.customers.contacts(tenant)
        if not contacts:
            raise DomainError(f"No WhatsApp contacts for {', '.join(tenants)}; add them with `warroom contacts add`.")
        briefed_before = any(e.kind is EventKind.BRIEF_SENT for e in await uow.incidents.timeline(incident.number))
        template = self.template_for(incident, command.template, briefed_before)
        eta = command.eta_minutes or (int(cadence.total_seconds() // 60) if cadence else 30)
        values = {"area": command.area or incident.title, "eta_minutes": str(eta),
                  "update": (last_status or incident.summary or "we are still working on it.").rstrip(".") + "."}
        try:
            parameters, text = render_brief(template, values)
        except ValueError as problem:
            raise DomainError(str(problem)) from None
        return await uow.customers.create_brief(
            incident_number=incident.number, template=template.name, kind=template.kind, parameters=parameters,
            text=text, target=",".join(tenants), eta_minutes=eta if "eta_minutes" in template.parameters else None,
            created_by=by, now=self._clock.now(), contacts=contacts)

    async def preview(self, uow: UnitOfWork, brief: Brief, incident: Incident) -> Reply:
        recipients = await uow.customers.recipients(brief.id)
        lines = [f"{'✗ skipped (opted out)' if r.status == 'skipped' else '→'} {r.label}" for r in recipients]
        sendable = sum(1 for r in recipients if r.status == "queued")
        configured = "" if self.messenger else " WhatsApp is not configured yet: set WHATSAPP_* in .env."
        return Reply(Message(
            title=f"Brief preview #{brief.id} for {incident.key} · template {brief.template} ({brief.kind})",
            fields=(Field("To", brief.target), Field("Message", brief.text)),
            text="\n".join(lines),
            buttons=(Button("brief_send", f"Send to {sendable}", str(brief.id), "primary"),) if sendable else (),
            footer=f"Nothing is sent until you confirm: /incident brief send {brief.id}.{configured}",
            incident_key=incident.key, kind="reply"))

    async def send(self, uow: UnitOfWork, *, brief: Brief, incident: Incident, by: str) -> Message:
        now = self._clock.now()
        if not await uow.customers.mark_brief_sent(brief.id, now):
            raise DomainError(f"Brief #{brief.id} was already sent.")
        template = self._playbooks.briefs.get(brief.template)
        if template is None:
            raise DomainError(f"Brief template '{brief.template}' no longer exists in the playbooks.")
        recipients = await uow.customers.recipients(brief.id)
        queued = [r for r in recipients if r.status == "queued"]
        for recipient in queued:
            contact = await uow.customers.contact(recipient.contact_id)
            free_text = contact is not None and contact.in_free_text_window(now)
            await uow.outbox.enqueue(_brief_message(brief, template, recipient, via="text" if free_text else "template",
                                                    dedupe_key=f"brief:{brief.id}:{recipient.id}"), now)
        skipped = len(recipients) - len(queued)
        if brief.eta_minutes and queued:
            incident.promise_customer_update(by=now + timedelta(minutes=brief.eta_minutes))
        incident.add_note(by=by, now=now, text=f"brief #{brief.id} ({brief.kind}) to {brief.target}: "
                                              f"{len(queued)} recipient(s)"
                                              f"{f', {skipped} skipped (opted out)' if skipped else ''}"
                                              f" — “{brief.text}”")
        return Message(text=f"Customer brief #{brief.id} ({brief.kind}) going to {brief.target}: {len(queued)} "
                            f"recipient(s){f', {skipped} opted out' if skipped else ''}. “{brief.text}”",
                       incident_key=incident.key, kind="update")

    # -- delivery (called by the outbox sender for customer_message rows) -------------------------------

    async def deliver(self, item: OutboxItem) -> str:
        """Send one recipient's message; returns the WhatsApp message id. Raises DeliveryError to retry/fail."""
        payload = item.outbound.customer or {}
        if self.messenger is None:
            raise DeliveryError("WhatsApp is not configured (WHATSAPP_PHONE_NUMBER_ID, WHATSAPP_ACCESS_TOKEN)",
                                permanent=True)
        recipient_id = payload.get("recipient_id")
        if recipient_id is not None:
            async with self._uow() as uow:
                recipient = await uow.customers.recipient(recipient_id)
                contact = await uow.customers.contact(recipient.contact_id) if recipient else None
            if contact is not None and contact.opted_out:  # opted out after the brief was confirmed
                await self._record(item, status="skipped", error="opted out", message_id=None, via=None)
                return ""
        fell_back = False
        try:
            if payload.get("via") == "text":
                try:
                    message_id = await self.messenger.send_text(to=payload["phone"], text=payload["text"])
                    via = "text"
                except DeliveryError as problem:
                    if not problem.window_closed:
                        raise
                    fell_back = True  # the window closed since we looked: the approved template still works
                    await self._close_window(payload["phone"])
                    message_id = await self._send_template(payload)
                    via = "template"
            else:
                message_id = await self._send_template(payload)
                via = "template"
        except DeliveryError as problem:
            if problem.permanent:
                await self._record(item, status="failed", error=_describe(problem), message_id=None, via=None)
            raise
        await self._record(item, status="sent", error=None, message_id=message_id, via=via, fell_back=fell_back)
        return message_id

    async def give_up(self, item: OutboxItem, reason: str) -> None:
        await self._record(item, status="failed", error=reason, message_id=None, via=None)

    async def _close_window(self, phone: str) -> None:
        async with self._uow() as uow:
            await uow.customers.close_window(phone=phone, at=self._clock.now())
            await uow.commit()

    async def _send_template(self, payload: JsonObject) -> str:
        assert self.messenger is not None  # deliver() refuses every send without a messenger
        return await self.messenger.send_template(
            to=payload["phone"], template=payload["template"], language=payload["language"],
            parameters=payload["parameters"])

    async def _record(self, item: OutboxItem, *, status: str, error: str | None, message_id: str | None,
                      via: str | None, fell_back: bool = False) -> None:
        payload = item.outbound.customer or {}
        now = self._clock.now()
        async with self._uow() as uow:
            recipient = await uow.customers.recipient(payload["recipient_id"]) if "recipient_id" in payload else None
            if recipient is not None:
                await uow.customers.update_recipient(recipient.id, now=now, status=status, message_id=message_id,
                                                     via=via, error=error)
            incident = await uow.incidents.get(payload.get("incident_number", -1))
            if incident is not None and recipient is not None:
                who = recipient.label
                if status == "sent":
                    incident.record_brief_sent(by=BOT_AUTHOR, now=now,
                                               text=f"brief ({payload.get('kind')}) sent to {who} via {via}")
                    if fell_back:
                        await self._queue(uow, incident, Message(
                            text=f"{who} is outside WhatsApp's 24-hour window, so the approved template "
                                 f"'{payload.get('template')}' went instead of free text.",
                            incident_key=incident.key, kind="info"))
                elif status == "failed":
                    incident.record_brief_failed(now=now, text=f"brief to {who} failed: {error}")
                    await self._queue(uow, incident, Message(text=f"Brief to {who} failed: {error}",
                                                             incident_key=incident.key, kind="error"))
            if recipient is not None and status == "sent" and message_id:
                # Statuses WhatsApp reported before this send was recorded (they were kept, not dropped).
                for early in await uow.customers.take_early_statuses(message_id):
                    _, said = await self.status(uow, early, incident=incident)
                    if said is not None and incident is not None:
                        await self._queue(uow, incident, said)
            if incident is not None and recipient is not None:
                await uow.incidents.save(incident)
            await uow.commit()

    # -- inbound webhooks ---------------------------------------------------------------------------------

    async def received(self, uow: UnitOfWork, event: CustomerMessageReceived) -> tuple[Incident | None, Message | None]:
        """A customer wrote: open their free-text window, handle STOP/START, route replies into the thread."""
        await uow.customers.mark_inbound(phone=event.phone, at=event.at)
        contacts = await uow.customers.contacts_by_phone(event.phone)
        if not contacts:
            log.info("WhatsApp message from a number that is no contact; ignored")
            return None, None
        number = await uow.customers.latest_open_incident_for(sorted({c.tenant for c in contacts}))
        incident = await uow.incidents.get(number) if number is not None else None
        name = f"{contacts[0].name} at {contacts[0].tenant}"
        if is_opt_out(event.text) or is_opt_in(event.text):
            opting_out = is_opt_out(event.text)
            await uow.customers.set_opt_out(phone=event.phone, at=event.at if opting_out else None)
            reply = ("You will no longer get incident updates from us. Reply START to get them again."
                     if opting_out else "You will get incident updates from us again. Reply STOP to stop them.")
            await uow.outbox.enqueue(Outbound(platform=PLATFORM, operation="customer_message",
                                              message=Message(text=reply),
                                              dedupe_key=f"optinout:{event.message_id}",
                                              customer={"phone": event.phone, "via": "text", "text": reply}), event.at)
            if incident is not None:
                incident.add_note(by=BOT_AUTHOR, now=self._clock.now(),
                                  text=f"{name} ({event.phone}) opted "
                                       f"{'out of' if opting_out else 'back in to'} briefs")
            return incident, None
        if incident is None:
            return None, None
        incident.record_customer_reply(customer=f"{name} ({event.phone})", text=event.text or "(no text)",
                                       now=event.at, message_ref=event.message_id)
        return incident, Message(text=f"💬 Customer {name} ({event.phone}) replied: {event.text or '(no text)'}",
                                 incident_key=incident.key, kind="info")

    async def status(self, uow: UnitOfWork, event: CustomerMessageStatus, *, incident: Incident | None = None
                     ) -> tuple[Incident | None, Message | None]:
        """A delivery status of a brief's message. One for a message id no send has recorded yet (WhatsApp can
        report before the send's answer was written) is kept and applied when the send is recorded.
        `incident`: the brief's incident when the caller holds it already (loaded in this unit of work)."""
        recipient = await uow.customers.recipient_by_message(event.message_id)
        if recipient is None:
            if await uow.outbox.find_sent(platform=PLATFORM, platform_message_id=event.message_id) is None:
                await uow.customers.keep_early_status(event, self._clock.now())
            return None, None  # else not a brief's current message (an operator's chat, a replaced attempt)
        if recipient.status == "failed" and event.status != "failed":
            return None, None  # a late 'sent'/'delivered' never undoes a failure
        order = ["queued", "sent", "delivered", "read"]
        if (event.status in order and recipient.status in order
                and order.index(event.status) <= order.index(recipient.status)):
            return None, None  # WhatsApp may report out of order; never step back
        error = f"{event.error_code}: {event.error_title}" if event.error_code else None
        await uow.customers.update_recipient(recipient.id, now=event.at, status=event.status, error=error)
        if event.status != "failed":
            return None, None
        brief = await uow.customers.brief(recipient.brief_id)
        if brief is None:
            return None, None
        if incident is None or incident.number != brief.incident_number:
            incident = await uow.incidents.get(brief.incident_number)
        if incident is None:
            return None, None
        template = self._playbooks.briefs.get(brief.template)
        if event.window_closed and recipient.via == "text" and template is not None:
            # Free text was accepted, then refused outside the 24-hour window: this one recipient gets the
            # approved template, once (the outbox key is unique however often WhatsApp repeats the status), and
            # their number goes straight to the template until they write to us again.
            await uow.customers.close_window(phone=recipient.phone, at=event.at)
            await uow.outbox.enqueue(_brief_message(brief, template, recipient, via="template",
                                                    dedupe_key=f"brief:{brief.id}:{recipient.id}>template"),
                                     self._clock.now())
            incident.add_note(by=BOT_AUTHOR, now=self._clock.now(),
                              text=f"brief to {recipient.label}: free text refused outside WhatsApp's 24-hour "
                                   f"window ({error}); re-sending as template '{template.whatsapp_template}'")
            return incident, Message(
                text=f"{recipient.label} is outside WhatsApp's 24-hour window, so the free-text brief was refused; "
                     f"it is being re-sent to them alone as the approved template '{template.whatsapp_template}'. "
                     f"Nothing to do.", incident_key=incident.key, kind="info")
        incident.record_brief_failed(now=event.at, text=f"brief to {recipient.label} failed: {error}")
        return incident, Message(text=f"Brief to {recipient.label} failed: {error}.", incident_key=incident.key,
                                 kind="error")


def _brief_message(brief: Brief, template: BriefTemplate, recipient: Recipient, *, via: str,
                   dedupe_key: str) -> Outbound:
    """One recipient's copy of a brief, as free text or as the approved template."""
    return Outbound(
        platform=PLATFORM, operation="customer_message", message=Message(text=brief.text, kind="info"),
        dedupe_key=dedupe_key, customer={
            "recipient_id": recipient.id, "incident_number": brief.incident_number, "brief_id": brief.id,
            "phone": recipient.phone, "via": via, "template": template.whatsapp_template,
            "language": template.language, "parameters": [brief.parameters[name] for name in template.parameters],
            "text": brief.text, "kind": brief.kind, "eta_minutes": brief.eta_minutes})


def _describe(problem: DeliveryError) -> str:
    return f"{problem.code}: {problem}" if problem.code else str(problem)

