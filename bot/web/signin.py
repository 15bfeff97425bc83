"""Signing in without passwords: a one-time link (single use, 10 minutes) becomes a browser session.

    link = await sign_in.issue_link(name="alice")        # https://warroom.example.com/web/login?token=…
    outcome = await sign_in.redeem(token)                # SignedIn(session token, csrf, name) or LinkRefused
    session = await sign_in.session(cookie_value)        # WebSession(name, csrf) or None

Only SHA-256 digests of tokens are stored, so a copy of the database signs nobody in. Redeeming is one
conditional update (`used_at IS NULL AND expires_at > now`): two tabs opening the same link get one session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from bot.ports import Clock, UnitOfWorkFactory


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class WebSession:
    name: str
    csrf: str


@dataclass(frozen=True)
class SignedIn:
    token: str  # the session cookie's value
    name: str
    expires_in: timedelta


@dataclass(frozen=True)
class LinkRefused:
    reason: str  # used | expired | unknown

    @property
    def text(self) -> str:
        return {"used": "This sign-in link was already used. Each link works once.",
                "expired": "This sign-in link has expired. Links work for 10 minutes.",
                }.get(self.reason, "This sign-in link is not valid.")


HOW_TO_GET_A_LINK = ("Get a new link: type /incident web in Slack, Discord, WhatsApp or the console (the bot "
                     "answers you privately), or run `warroom web login YOUR-NAME` on the server.")


class SignIn:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, base_url: str, link_ttl: timedelta,
                 session_ttl: timedelta) -> None:
        self._uow = uow
        self._clock = clock
        self.base_url = base_url.rstrip("/")
        self.link_ttl = link_ttl
        self.session_ttl = session_ttl

    async def issue_link(self, *, name: str) -> str:
        """A new one-time sign-in link for `name` (the chat display name or the shell's NAME)."""
        name = " ".join(name.split())[:200]
        if not name:
            raise ValueError("a sign-in link needs a name")
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.web.add_token(digest=digest(token), kind="link", name=name, csrf=None, now=now,
                                    expires_at=now + self.link_ttl)
            await uow.commit()
        return f"{self.base_url}/web/login?token={token}"  # a query parameter: the access log redacts it

    async def check_link(self, token: str) -> LinkRefused | None:
        """Whether a link would still sign in (the page with the button shows this before anyone presses it)."""
        async with self._uow() as uow:
            reason = await uow.web.link_state(digest(token), self._clock.now())
        return None if reason == "ok" else LinkRefused(reason)

    async def redeem(self, token: str) -> SignedIn | LinkRefused:
        now = self._clock.now()
        async with self._uow() as uow:
            name = await uow.web.use_link(digest(token), now)
            if name is None:
                reason = await uow.web.link_state(digest(token), now)
                return LinkRefused("used" if reason == "ok" else reason)
            session = secrets.token_urlsafe(32)
            await uow.web.add_token(digest=digest(session), kind="session", name=name,
                                    csrf=secrets.token_urlsafe(24), now=now, expires_at=now + self.session_ttl)
            await uow.commit()
        return SignedIn(token=session, name=name, expires_in=self.session_ttl)

    async def session(self, token: str | None) -> WebSession | None:
        if not token or len(token) > 200:
            return None
        async with self._uow() as uow:
            found = await uow.web.session(digest(token), self._clock.now())
        return WebSession(name=found[0], csrf=found[1]) if found else None

    async def sign_out(self, token: str) -> None:
        async with self._uow() as uow:
            await uow.web.end_session(digest(token), self._clock.now())
            await uow.commit()
