"""Customers: contacts by tenant, briefs and their recipients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.briefs.templates import Brief, Contact, Recipient
from bot.incident.domain import (
    Status,
)
from bot.ports import (
    CustomerMessageStatus,
)
from storage.repositories._shared import dialect_of
from storage.tables import (
    BriefRecipientRow,
    BriefRow,
    ContactRow,
    EarlyStatusRow,
    IncidentRow,
    IncidentTenantRow,
    OutboxRow,
)


class ContactExists(ValueError):
    pass


def _contact(row: ContactRow) -> Contact:
    return Contact(id=row.id, tenant=row.tenant, name=row.name, phone=row.phone,  # type: ignore[arg-type]
                   opted_out_at=row.opted_out_at, last_inbound_at=row.last_inbound_at,
                   window_closed_at=row.window_closed_at)


def _recipient(row: BriefRecipientRow) -> Recipient:
    return Recipient(id=row.id, brief_id=row.brief_id, contact_id=row.contact_id, tenant=row.tenant,  # type: ignore[arg-type]
                     name=row.name, phone=row.phone, status=row.status, message_id=row.message_id, via=row.via,
                     error=row.error)


class SqlCustomerRepository:
    """Contacts by tenant, briefs and their per-recipient delivery state."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_contact(self, *, tenant: str, name: str, phone: str, now: datetime) -> Contact:
        row = ContactRow(tenant=tenant, name=name, phone=phone, created_at=now)
        try:
            async with self._session.begin_nested():
                self._session.add(row)
                await self._session.flush()
        except IntegrityError:
            raise ContactExists(f"{phone} is already a contact of {tenant}") from None
        return _contact(row)

    async def remove_contact(self, *, phone: str, tenant: str | None, now: datetime) -> int:
        """Remove a number. One that already received briefs is kept, opted out, because the incident
        timeline and delivery records point at it."""
        query = select(ContactRow).where(col(ContactRow.phone) == phone)
        if tenant:
            query = query.where(col(ContactRow.tenant) == tenant)
        removed = 0
        for row in (await self._session.exec(query)).all():
            used = (await self._session.exec(select(BriefRecipientRow.id).where(
                col(BriefRecipientRow.contact_id) == row.id).limit(1))).first()
            if used is None:
                await self._session.delete(row)
            else:
                row.opted_out_at = row.opted_out_at or now
                self._session.add(row)
            removed += 1
        await self._session.flush()
        return removed

    async def contacts(self, tenant: str | None = None) -> list[Contact]:
        query = select(ContactRow).order_by(col(ContactRow.tenant), col(ContactRow.name), col(ContactRow.id))
        if tenant:
            query = query.where(col(ContactRow.tenant) == tenant)
        return [_contact(r) for r in (await self._session.exec(query)).all()]

    async def tenants(self) -> list[str]:
        return list((await self._session.exec(
            select(ContactRow.tenant).distinct().order_by(col(ContactRow.tenant)))).all())

    async def contacts_by_phone(self, phone: str) -> list[Contact]:
        rows = (await self._session.exec(select(ContactRow).where(col(ContactRow.phone) == phone))).all()
        return [_contact(r) for r in rows]

    async def contact(self, contact_id: int) -> Contact | None:
        row = await self._session.get(ContactRow, contact_id)
        return _contact(row) if row else None

    async def mark_inbound(self, *, phone: str, at: datetime) -> int:
        result = await self._session.exec(sa.update(ContactRow).where(col(ContactRow.phone) == phone)
                                          .values(last_inbound_at=at))
        return result.rowcount

    async def close_window(self, *, phone: str, at: datetime) -> int:
        """The platform refused free text to `phone` at `at`: templates only until the customer writes again."""
        result = await self._session.exec(sa.update(ContactRow).where(
            col(ContactRow.phone) == phone,
            sa.or_(col(ContactRow.window_closed_at).is_(None), col(ContactRow.window_closed_at) < at))
            .values(window_closed_at=at))
        return result.rowcount

    async def keep_early_status(self, event: CustomerMessageStatus, now: datetime) -> None:
        """A status for a message id no send has recorded yet: kept until one does."""
        self._session.add(EarlyStatusRow(message_id=event.message_id[:128], status=event.status[:16], at=event.at,
                                         phone=event.phone, error_code=event.error_code,
                                         error_title=(event.error_title or None) and event.error_title[:500],
                                         window_closed=event.window_closed, received_at=now))
        await self._session.flush()

    async def take_early_statuses(self, message_id: str | None = None) -> list[CustomerMessageStatus]:
        """Remove and return the kept statuses of `message_id`, or (None) of every message id a send has
        recorded by now (a brief's recipient or a delivered outbox row), oldest first."""
        query = select(EarlyStatusRow).order_by(col(EarlyStatusRow.id))
        if message_id is not None:
            query = query.where(col(EarlyStatusRow.message_id) == message_id)
        else:
            known = sa.or_(
                sa.exists().where(col(BriefRecipientRow.message_id) == EarlyStatusRow.message_id),
                sa.exists().where(col(OutboxRow.platform_message_id) == EarlyStatusRow.message_id,
                                  col(OutboxRow.status) == "delivered"))
            query = query.where(known)
        if dialect_of(self._session) == "postgresql":
            query = query.with_for_update(skip_locked=True)  # replicas sweeping at once take disjoint rows
        rows = (await self._session.exec(query)).all()
        if not rows:
            return []
        await self._session.exec(sa.delete(EarlyStatusRow).where(
            col(EarlyStatusRow.id).in_([r.id for r in rows])))
        return [CustomerMessageStatus(message_id=r.message_id, status=r.status, at=r.at, phone=r.phone,
                                      error_code=r.error_code, error_title=r.error_title,
                                      window_closed=r.window_closed) for r in rows]

    async def set_opt_out(self, *, phone: str, at: datetime | None) -> int:
        result = await self._session.exec(sa.update(ContactRow).where(col(ContactRow.phone) == phone)
                                          .values(opted_out_at=at))
        return result.rowcount

    async def create_brief(self, *, incident_number: int, template: str, kind: str, parameters: dict[str, str],
                           text: str, target: str, eta_minutes: int | None, created_by: str, now: datetime,
                           contacts: list[Contact]) -> Brief:
        row = BriefRow(incident_number=incident_number, template=template, kind=kind, parameters=parameters,
                       text=text, target=target, eta_minutes=eta_minutes, created_by=created_by, created_at=now)
        self._session.add(row)
        await self._session.flush()
        for contact in contacts:
            self._session.add(BriefRecipientRow(brief_id=row.id, contact_id=contact.id, tenant=contact.tenant,  # type: ignore[arg-type]
                                                name=contact.name, phone=contact.phone,
                                                status="skipped" if contact.opted_out else "queued",
                                                error="opted out" if contact.opted_out else None, updated_at=now))
        await self._session.flush()
        return self._brief(row)

    @staticmethod
    def _brief(row: BriefRow) -> Brief:
        return Brief(id=row.id, incident_number=row.incident_number, template=row.template, kind=row.kind,  # type: ignore[arg-type]
                     parameters=row.parameters, text=row.text, target=row.target, eta_minutes=row.eta_minutes,
                     status=row.status, created_by=row.created_by)

    async def brief(self, brief_id: int) -> Brief | None:
        row = await self._session.get(BriefRow, brief_id)
        return self._brief(row) if row else None

    async def mark_brief_sent(self, brief_id: int, now: datetime) -> bool:
        """Preview → sent, once: a double-clicked Send button sends one brief."""
        result = await self._session.exec(sa.update(BriefRow).where(col(BriefRow.id) == brief_id,
                                                                    col(BriefRow.status) == "preview")
                                          .values(status="sent", sent_at=now))
        return result.rowcount == 1

    async def recipients(self, brief_id: int) -> list[Recipient]:
        rows = (await self._session.exec(select(BriefRecipientRow).where(col(BriefRecipientRow.brief_id) == brief_id)
                                         .order_by(col(BriefRecipientRow.id)))).all()
        return [_recipient(r) for r in rows]

    async def brief_deliveries(self, incident_number: int) -> list[tuple[Brief, list[Recipient]]]:
        """The incident's sent briefs (previews left out), each with its recipients' delivery state."""
        briefs = (await self._session.exec(select(BriefRow).where(
            col(BriefRow.incident_number) == incident_number, col(BriefRow.status) == "sent")
            .order_by(col(BriefRow.id)))).all()
        return [(self._brief(row), await self.recipients(row.id)) for row in briefs]  # type: ignore[arg-type]

    async def recipient(self, recipient_id: int) -> Recipient | None:
        row = await self._session.get(BriefRecipientRow, recipient_id)
        return _recipient(row) if row else None

    async def recipient_by_message(self, message_id: str) -> Recipient | None:
        row = (await self._session.exec(select(BriefRecipientRow).where(
            col(BriefRecipientRow.message_id) == message_id))).first()
        return _recipient(row) if row else None

    async def update_recipient(self, recipient_id: int, *, now: datetime, status: str,
                               message_id: str | None = None, via: str | None = None,
                               error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "updated_at": now, "error": error}
        if message_id is not None:
            values["message_id"] = message_id
        if via is not None:
            values["via"] = via
        await self._session.exec(sa.update(BriefRecipientRow).where(col(BriefRecipientRow.id) == recipient_id)
                                 .values(**values))

    async def latest_open_incident_for(self, tenants: list[str]) -> int | None:
        if not tenants:
            return None
        open_statuses = [s.value for s in Status if s.is_open]
        row = (await self._session.exec(
            select(IncidentRow.number)
            .join(IncidentTenantRow, col(IncidentTenantRow.incident_number) == IncidentRow.number)
            .where(col(IncidentTenantRow.tenant).in_(tenants), col(IncidentRow.status).in_(open_statuses))
            .order_by(col(IncidentRow.number).desc()).limit(1))).first()
        return row
