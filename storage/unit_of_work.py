"""The unit of work and repositories over SQLModel's async session.

One `SqlUnitOfWork` is one transaction: the service changes an Incident, saves it (row, action items, new
timeline events) and re-plans its reminders, and all of it commits or none of it does."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.repositories.customers import SqlCustomerRepository
from storage.repositories.incidents import SqlIncidentRepository
from storage.repositories.oncall import SqlEscalationRepository, SqlOnCallRepository
from storage.repositories.operations import SqlAlertRepository, SqlReportRepository, SqlScheduleRepository
from storage.repositories.operators import SqlOperatorRepository
from storage.repositories.outbox import SqlDeliveryLog, SqlOutboxRepository
from storage.repositories.reminders import SqlReminderRepository
from storage.repositories.web import SqlWebRepository


class SqlUnitOfWork:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 outbox_listeners: Sequence[Callable[[], None]] = ()) -> None:
        self._sessions = sessions
        self._outbox_listeners = outbox_listeners

    async def __aenter__(self) -> SqlUnitOfWork:
        self.session = self._sessions()
        self.incidents = SqlIncidentRepository(self.session)
        self.reminders = SqlReminderRepository(self.session)
        self.deliveries = SqlDeliveryLog(self.session)
        self.outbox = SqlOutboxRepository(self.session)
        self.customers = SqlCustomerRepository(self.session)
        self.operators = SqlOperatorRepository(self.session)
        self.oncall = SqlOnCallRepository(self.session)
        self.escalations = SqlEscalationRepository(self.session)
        self.alerts = SqlAlertRepository(self.session)
        self.schedules = SqlScheduleRepository(self.session)
        self.reports = SqlReportRepository(self.session, self.incidents)
        self.web = SqlWebRepository(self.session, self.customers, self.reminders)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.rollback()
        await self.session.close()

    async def commit(self) -> None:
        wrote = await self.outbox.flush()
        await self.session.commit()
        if wrote:
            for listener in self._outbox_listeners:
                listener()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine, *, on_outbox_written: Callable[[], None] | None = None) -> None:
        """`on_outbox_written` is called after every commit that wrote outbox rows (the sender learns there is
        more)."""
        self.engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._outbox_listeners: list[Callable[[], None]] = [on_outbox_written] if on_outbox_written else []

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self._outbox_listeners)
