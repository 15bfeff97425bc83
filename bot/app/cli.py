"""`warroom` command line: console, serve, postmortem, incidents, digest, playbooks check, db upgrade.

Imports are lazy per subcommand so each command only loads what it uses.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any


def _settings():  # noqa: ANN202 - Settings, imported lazily
    from pydantic import ValidationError

    from bot.app.settings import Settings

    try:
        return Settings()
    except ValidationError as problem:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in problem.errors())
        raise SystemExit(f"warroom: bad settings ({details}). See .env.example.") from None


def _parse_ref(ref: str) -> int:
    from bot.incident.commands import _INCIDENT_REF

    match = _INCIDENT_REF.match(ref.strip())
    if not match:
        raise SystemExit(f"warroom: {ref!r} is not an incident id; use INC-n, e.g. INC-1")
    return int(match.group(1))


async def _console(args: argparse.Namespace) -> int:
    from adapters.console import ConsoleChat, ConsoleSession, play, stdin_lines
    from bot.app.bootstrap import build
    from bot.ports import FastClock, ManualClock, SystemClock

    settings = _settings()
    out = sys.stdout
    chat = ConsoleChat(out)
    if args.script:
        clock = ManualClock(SystemClock().now().replace(microsecond=0))
        advance = clock.advance
    else:
        clock = FastClock(args.speed)
        advance = clock.advance
    app = await build(settings, chat={"console": chat}, clock=clock)
    session = ConsoleSession(service=app.service, chat=chat, out=out, user=args.user,
                             channel=settings.incidents_channel, advance=advance)
    try:
        if args.script:
            await play(session, Path(args.script).read_text(encoding="utf-8").splitlines())
            return 0
        app.start_scheduler()
        speed = f", time runs {args.speed:g}× faster" if args.speed != 1 else ""
        session.say(f"warroom console — database {settings.database_url}{speed}. /help for console commands, "
                    f"/incident help for bot commands.")
        out.write(session.prompt)
        out.flush()
        async for line in stdin_lines():
            await session.handle(line)
            if session.finished:
                break
            out.write(session.prompt)
            out.flush()
        return 0
    finally:
        await app.close()


async def _postmortem(args: argparse.Namespace) -> int:
    from bot.app.bootstrap import build
    from bot.incident.domain import DomainError

    app = await build(_settings(), chat={})
    try:
        document = await app.service.export_postmortem(_parse_ref(args.incident), args.format)
    except DomainError as problem:
        print(f"warroom: {problem}", file=sys.stderr)
        return 1
    finally:
        await app.close()
    if args.output:
        Path(args.output).write_text(document, encoding="utf-8")
    else:
        sys.stdout.write(document)
    return 0


async def _incidents(args: argparse.Namespace) -> int:
    from bot.app.bootstrap import build
    from bot.incident.render import incident_line
    from bot.ports import SystemClock

    app = await build(_settings(), chat={})
    try:
        incidents = await app.service.incidents(open_only=args.open)
        now = SystemClock().now()
        for incident in incidents:
            print(incident_line(incident, now, app.settings.tz))
        if not incidents:
            print("No open incidents." if args.open else "No incidents.")
    finally:
        await app.close()
    return 0


async def _serve(args: argparse.Namespace) -> int:
    import signal

    import uvicorn

    from adapters.http import build_http_app
    from bot.app.bootstrap import build

    settings = _settings()
    logging.getLogger("warroom").setLevel(settings.log_level.upper())
    host = args.host or settings.http_host
    port = args.port if args.port is not None else settings.http_port
    chat: dict = {}
    slack = None
    if settings.slack_configured:
        from adapters.slack.chat import slack_chat_from_settings

        slack = chat["slack"] = slack_chat_from_settings(settings)
    from adapters.discord.settings import DiscordSettings

    discord_settings = DiscordSettings()
    if discord_settings.configured:
        from adapters.discord.bot import discord_chat_from_settings

        chat["discord"] = discord_chat_from_settings(discord_settings)
    if not chat:
        print("warroom: no chat platform configured (set SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET or "
              "SLACK_APP_TOKEN, or DISCORD_BOT_TOKEN); serving /health only.", file=sys.stderr)
    from adapters.whatsapp.settings import WhatsAppSettings

    whatsapp_settings = WhatsAppSettings()
    messenger = None
    if whatsapp_settings.configured:
        from adapters.whatsapp.chat import WhatsAppChat
        from adapters.whatsapp.client import WhatsAppCloud
        from bot.app.bootstrap import load_configured_playbooks

        messenger = WhatsAppCloud.from_settings(whatsapp_settings)
        # The same number is the operators' room: their nudges fall back to this template outside 24 hours.
        fallback = next((t for t in load_configured_playbooks(settings).briefs.values() if t.kind == "operator"),
                        None)
        chat["whatsapp"] = WhatsAppChat(messenger, fallback_template=fallback.whatsapp_template if fallback
                                        else "warroom_operator_update",
                                        fallback_language=fallback.language if fallback else "en")
    # Background delivery: a request is answered once its change is committed; the outbox talks to chat
    # platforms afterwards, so a slow or failing chat API never delays an acknowledgement.
    app = await build(settings, chat=chat, messenger=messenger, deliver_inline=False)
    inbound = None
    discord_runtime = None
    try:
        routes = []
        if whatsapp_settings.webhook_configured:
            from adapters.whatsapp.routes import whatsapp_routes

            routes += whatsapp_routes(verify_token=whatsapp_settings.verify_token,
                                      app_secret=whatsapp_settings.app_secret, on_event=app.service.customer_event)
        if slack is not None:
            from adapters.http import slack_routes
            from adapters.slack.app import SlackInbound

            secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
            inbound = SlackInbound(service=app.service, chat=slack, signing_secret=secret)
            if settings.slack_app_token is not None:
                await inbound.connect_socket_mode(settings.slack_app_token.get_secret_value())
                print("warroom: Slack connected over Socket Mode.", file=sys.stderr)
            else:
                routes += slack_routes(inbound.app)
        from adapters.ops_http import ops_routes

        routes += ops_routes(app)  # alert intake, /api/freeze, /metrics
        if "discord" in chat:
            from adapters.discord.bot import start_discord

            # "Discord connected." is announced on the gateway's READY, a fatal close with its fix.
            discord_runtime = await start_discord(app.service, discord_settings, chat=chat["discord"],
                                                  announce=lambda text: print(f"warroom: {text}", file=sys.stderr))
        app.start_scheduler()
        checks = {"discord": discord_runtime.health_problem} if discord_runtime is not None else None
        config = uvicorn.Config(build_http_app(routes, health_checks=checks), host=host, port=port, log_level=settings.log_level.lower(),
                                lifespan="off")
        where = "".join(f"{' '.join(sorted(r.methods - {'HEAD'}))} {r.path}, " for r in routes)
        print(f"warroom: serving {where}GET /health on http://{host}:{port}", file=sys.stderr)
        # uvicorn stops gracefully on SIGINT/SIGTERM and then re-raises the signal to the handler that was there
        # before it; a recording handler there lets the finally below drain in-flight Slack work and close the
        # database instead of the process dying on the spot.
        stopped: list[int] = []
        previous = {sig: signal.signal(sig, lambda number, frame: stopped.append(number))
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            await uvicorn.Server(config).serve()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0
    finally:
        await app.ticker.stop()
        if discord_runtime is not None:
            await discord_runtime.stop()
        if inbound is not None:
            await inbound.close()
        if messenger is not None:
            await messenger.aclose()
        await app.close()
        if slack is not None:
            await slack.aclose()  # after the outbox stopped sending


def _playbooks_check(args: argparse.Namespace) -> int:
    import os

    from playbooks.loader import PlaybookError, load_playbooks

    try:
        playbooks = load_playbooks(Path(args.directory) if args.directory else None)
        # Alert rules name levels: check them against the ladder in use (--ladder, else WARROOM_LADDER), or
        # against every ladder when neither says which.
        ladder_name = args.ladder or os.environ.get("WARROOM_LADDER")
        ladders = [playbooks.ladder(ladder_name)] if ladder_name else list(playbooks.ladders.values())
        for rules in playbooks.alert_rules:
            for ladder in ladders:
                playbooks.alert_rules_for(rules, ladder)
    except PlaybookError as problem:
        print(f"warroom: {problem}", file=sys.stderr)
        return 1
    print(f"ok: {len(playbooks.ladders)} ladders ({', '.join(sorted(playbooks.ladders))}), "
          f"{len(playbooks.scenarios)} scenarios, {len(playbooks.briefs)} brief templates, "
          f"{len(playbooks.postmortem_templates)} post-mortem templates, "
          f"{len(playbooks.alert_rules)} alert rule set(s) ({', '.join(sorted(playbooks.alert_rules))})")
    return 0


async def _digest(args: argparse.Namespace) -> int:
    from adapters.text import to_text
    from bot.app.bootstrap import build

    app = await build(_settings(), chat={})
    try:
        assert app.operations is not None
        message = await app.operations.digest()
    finally:
        await app.close()
    print(to_text(message))
    return 0


async def _db_upgrade(args: argparse.Namespace) -> int:
    from storage.engine import create_engine
    from storage.migrate import upgrade

    settings = _settings()
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(f"database at head: {settings.database_url.split('@')[-1]}")
    return 0


async def _outbox(args: argparse.Namespace) -> int:
    from bot.ports import SystemClock
    from storage.engine import create_engine
    from storage.migrate import upgrade
    from storage.repository import SqlUnitOfWorkFactory

    engine = create_engine(_settings().database_url)
    try:
        await upgrade(engine)
        async with SqlUnitOfWorkFactory(engine)() as uow:
            if args.outbox_command == "retry":
                count = await uow.outbox.requeue_failed(SystemClock().now(), args.ids or None)
                await uow.commit()
                print(f"requeued {count} failed message(s); a running warroom delivers them on its next tick")
                return 0
            statuses = ("pending", "sending", "failed") if not args.all else ("pending", "sending", "failed",
                                                                              "delivered")
            entries = await uow.outbox.entries(statuses)
            counts = await uow.outbox.counts()
    finally:
        await engine.dispose()
    for e in entries:
        incident = f"INC-{e.incident_number}" if e.incident_number else "-"
        print(f"{e.id:>6} {e.status:<9} {e.platform:<8} {e.operation:<11} {incident:<8} attempts={e.attempts} "
              f"next={e.next_attempt_at:%Y-%m-%d %H:%M:%S} {e.summary!r}" + (f"\n       error: {e.last_error}"
                                                                            if e.last_error else ""))
    print(", ".join(f"{status}: {count}" for status, count in sorted(counts.items())) or "outbox is empty")
    return 0


async def _contacts(args: argparse.Namespace) -> int:
    async with _offline_app() as app:
        briefs = app.service.briefs
        if args.contacts_command == "add":
            contact = await briefs.add_contact(tenant=args.tenant, name=args.name, phone=args.phone)
            print(f"added {contact.name} at {contact.tenant} ({contact.phone})")
        elif args.contacts_command == "remove":
            removed = await briefs.remove_contact(phone=args.phone, tenant=args.tenant)
            print(f"removed {removed} contact(s)" if removed else f"no contact {args.phone}")
            return 0 if removed else 1
        elif args.contacts_command == "import":
            added, skipped = await briefs.import_contacts(Path(args.file).read_text(encoding="utf-8"))
            print(f"imported {added} contact(s)" + "".join(f"\n  skipped {s}" for s in skipped))
        else:
            contacts = await briefs.contacts(args.tenant)
            for c in contacts:
                print(f"{c.tenant:<16} {c.phone:<16} {c.name}" + ("  (opted out)" if c.opted_out else ""))
            if not contacts:
                print("No contacts." + ("" if args.tenant else " Add one: warroom contacts add acme \"Jane Doe\" +254700000001"))
    return 0


async def _operators(args: argparse.Namespace) -> int:
    async with _offline_app() as app:
        desk = app.service.operators
        if args.operators_command == "add":
            added = await desk.add(phone=args.phone, name=args.name)
            print(f"added operator {args.name or args.phone}" if added else f"{args.phone} is already an operator")
        elif args.operators_command == "remove":
            removed = await desk.remove(args.phone)
            print(f"removed operator {args.phone}" if removed else f"{args.phone} is not an operator")
            return 0 if removed else 1
        else:
            operators = await desk.all()
            for o in operators:
                print(f"{o.phone:<16} {o.name}" + (f"  (on INC-{o.current_incident})" if o.current_incident else ""))
            if not operators:
                print("No operators. Add one: warroom operators add +254700000001 --name alice")
    return 0


@asynccontextmanager
async def _offline_app() -> AsyncIterator[Any]:
    """The app without chat platforms, for one-shot commands; closed on the way out."""
    from bot.app.bootstrap import build

    app = await build(_settings(), chat={})
    try:
        yield app
    finally:
        await app.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="warroom", description="Chat-ops incident bot built from your runbooks.")
    sub = parser.add_subparsers(dest="command", required=True)

    console = sub.add_parser("console", help="run the bot in this terminal (console chat + SQLite)")
    console.add_argument("--user", default="operator", help="who you are speaking as (default: operator)")
    console.add_argument("--speed", type=float, default=1.0, help="run time N× faster so reminders show sooner")
    console.add_argument("--script", metavar="FILE", help="play a file of console lines instead of reading stdin")

    postmortem = sub.add_parser("postmortem", help="print or write an incident's post-mortem")
    postmortem.add_argument("incident", help="INC-n")
    postmortem.add_argument("--format", choices=("md", "json"), default="md")
    postmortem.add_argument("-o", "--output", help="write to FILE instead of stdout")

    serve = sub.add_parser("serve", aliases=["run"],
                           help="run every configured platform (Slack, Discord, WhatsApp) and the HTTP server")
    serve.add_argument("--host", help="listen address (default: WARROOM_HTTP_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default: WARROOM_HTTP_PORT)")

    incidents = sub.add_parser("incidents", help="list incidents")
    incidents.add_argument("--open", action="store_true", help="only open incidents")

    playbooks = sub.add_parser("playbooks", help="playbook data tools")
    playbooks_sub = playbooks.add_subparsers(dest="playbooks_command", required=True)
    check = playbooks_sub.add_parser("check", help="validate a playbook folder (default: the bundled one)")
    check.add_argument("directory", nargs="?")
    check.add_argument("--ladder", help="check alert rule levels against this ladder (default: WARROOM_LADDER, "
                                        "else every ladder)")

    sub.add_parser("digest", help="print the daily digest now (open incidents, missed targets, overdue work)")

    operators = sub.add_parser("operators", help="WhatsApp numbers that may run incidents from their phone")
    operators_sub = operators.add_subparsers(dest="operators_command", required=True)
    op_add = operators_sub.add_parser("add", help="allow a number")
    op_add.add_argument("phone", help="E.164, e.g. +254700000001")
    op_add.add_argument("--name", help="how the operator appears in timelines")
    op_remove = operators_sub.add_parser("remove", help="withdraw a number")
    op_remove.add_argument("phone")
    operators_sub.add_parser("list", help="list operators")

    outbox = sub.add_parser("outbox", help="outbound messages not yet delivered")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    listing = outbox_sub.add_parser("list", help="pending, sending and failed messages")
    listing.add_argument("--all", action="store_true", help="include delivered messages")
    retry = outbox_sub.add_parser("retry", help="requeue failed messages (all, or the given ids)")
    retry.add_argument("ids", nargs="*", type=int)

    contacts = sub.add_parser("contacts", help="customers' WhatsApp numbers by tenant, for briefs")
    contacts_sub = contacts.add_subparsers(dest="contacts_command", required=True)
    add = contacts_sub.add_parser("add", help="add a contact")
    add.add_argument("tenant", help="customer tenant, e.g. acme")
    add.add_argument("name")
    add.add_argument("phone", help="E.164, e.g. +254700000001")
    contacts_list = contacts_sub.add_parser("list", help="list contacts")
    contacts_list.add_argument("--tenant")
    remove = contacts_sub.add_parser("remove", help="remove a number (kept as opted out if it was briefed)")
    remove.add_argument("phone")
    remove.add_argument("--tenant")
    importer = contacts_sub.add_parser("import", help="import a CSV with columns tenant,name,phone")
    importer.add_argument("file")

    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="run migrations to the latest schema")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from playbooks.loader import PlaybookError

    try:
        if args.command == "console":
            return asyncio.run(_console(args))
        if args.command in ("serve", "run"):
            return asyncio.run(_serve(args))
        if args.command == "postmortem":
            return asyncio.run(_postmortem(args))
        if args.command == "incidents":
            return asyncio.run(_incidents(args))
        if args.command == "digest":
            return asyncio.run(_digest(args))
        if args.command == "playbooks":
            return _playbooks_check(args)
        if args.command == "contacts":
            return asyncio.run(_contacts(args))
        if args.command == "operators":
            return asyncio.run(_operators(args))
        if args.command == "outbox":
            return asyncio.run(_outbox(args))
        if args.command == "db":
            return asyncio.run(_db_upgrade(args))
    except PlaybookError as problem:
        print(f"warroom: {problem}", file=sys.stderr)
        return 2
    except ValueError as problem:  # bad input to a one-shot command (a phone number, a CSV row…)
        print(f"warroom: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
