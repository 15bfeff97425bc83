"""`warroom` command line: console, serve, postmortem, incidents, digest, playbooks check, db upgrade, oncall.

Imports are lazy per subcommand so each command only loads what it uses.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app.settings import Settings


def _settings() -> Settings:
    from pydantic import ValidationError

    from bot.app.settings import load_settings

    try:
        return load_settings()
    except ValidationError as problem:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in problem.errors())
        raise SystemExit(f"warroom: bad settings ({details}). See .env.example.") from None


def _parse_ref(ref: str) -> int:
    from bot.incident.key import IncidentKey

    key = IncidentKey.parse(ref)
    if key is None:
        raise SystemExit(f"warroom: {ref!r} is not an incident id; use INC-n, e.g. INC-1")
    return key.number


async def _console(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.bootstrap import build_console

    lines = _read_text(args.script).splitlines() if args.script else None
    console = await build_console(settings, out=sys.stdout, user=args.user, speed=args.speed,
                                  scripted=lines is not None)
    try:
        if lines is not None:
            await console.play(lines)
        else:
            await console.run_interactive()
        return 0
    finally:
        await console.stop()


async def _postmortem(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.bootstrap import offline

    number = _parse_ref(args.incident)
    if args.git:
        return await _postmortem_to_git(args, settings, number)
    output = _writable(args.output) if args.output else None
    async with offline(settings) as app:
        document = await app.service.export_postmortem(number, args.format)
    if output is not None:
        _write_text(output, document)
    else:
        sys.stdout.write(document)
    return 0


async def _postmortem_to_git(args: argparse.Namespace, settings: Settings, number: int) -> int:
    """Commit the post-mortem (and a draft playbook, when the failure mode was new) to a branch of a local
    clone; the working tree and the checked-out branch are left alone."""
    from dataclasses import replace

    from adapters.git.clone import LocalClone
    from bot.app.bootstrap import offline
    from bot.ports import DeliveryError

    async with offline(settings) as app:
        await app.service.export_postmortem(number)  # an unknown incident says so the usual way
        request = await app.followups.postmortem_request(number)
    change = replace(request.change, branch=args.branch) if args.branch else request.change
    try:
        published = await LocalClone(args.git).publish(change=change)
    except DeliveryError as problem:
        raise ValueError(f"nothing committed: {problem}") from None
    files = ", ".join(f.path for f in change.files)
    print(f"INC-{number} post-mortem is on branch {published.branch} in {args.git}: {files}")
    return 0


async def _incidents(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.bootstrap import offline
    from bot.incident.render import incident_line
    from bot.ports import SystemClock

    async with offline(settings) as app:
        incidents = await app.service.incidents(open_only=args.open)
        now = SystemClock().now()
        for incident in incidents:
            print(incident_line(incident, now, app.settings.tz))
        if not incidents:
            print("No open incidents." if args.open else "No incidents.")
    return 0


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    import uvicorn

    from adapters.http import redact_access_log
    from bot.app.bootstrap import build_server

    server = await build_server(settings, host=args.host, port=args.port)
    try:
        await server.start()
        # log_config=None: uvicorn's loggers go through the process's logging (configure_logging), access log
        # included.
        config = uvicorn.Config(server.http_app, host=server.host, port=server.port, log_config=None,
                                lifespan="off")
        redact_access_log()  # uvicorn's access log shows each URL: no hub.verify_token=… in it
        logging.getLogger("warroom").info(server.describe())
        # uvicorn stops gracefully on SIGINT/SIGTERM and then re-raises the signal to the handler that was there
        # before it; a recording handler there lets the finally below drain in-flight work and close the
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
        await server.stop()


def _playbooks_check(args: argparse.Namespace, settings: Settings) -> int:
    from playbooks.loader import PlaybookError, load_playbooks

    folder = Path(args.directory) if args.directory else None
    sections = ("severities", "scenarios", "briefs", "postmortem", "alerts", "oncall")
    if folder is not None and folder.is_dir() and not any((folder / name).is_dir() for name in sections):
        # Checking a folder with none of the layout's sections would only check the bundled playbooks.
        print(f"warroom: {folder} holds no playbooks: expected one of {', '.join(s + '/' for s in sections)}",
              file=sys.stderr)
        return 1
    try:
        playbooks = load_playbooks(folder)
        # Alert rules name levels: check them against the ladder in use (--ladder, else WARROOM_LADDER), or
        # against every ladder when neither says which.
        ladder_name = args.ladder or (settings.ladder if "ladder" in settings.model_fields_set else None)
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
          f"{len(playbooks.alert_rules)} alert rule set(s) ({', '.join(sorted(playbooks.alert_rules))}), "
          f"{len(playbooks.oncall)} on-call plan(s) ({', '.join(sorted(playbooks.oncall))})")
    return 0


async def _digest(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.text import to_text
    from bot.app.bootstrap import offline

    async with offline(settings) as app:
        assert app.operations is not None
        message = await app.operations.digest()
    print(to_text(message))
    return 0


async def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.bootstrap import upgrade_database

    await upgrade_database(settings)
    print(f"database at head: {settings.database_url.split('@')[-1]}")
    return 0


async def _outbox(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.bootstrap import outbox_report, requeue_failed
    from bot.incident.key import key_of

    if args.outbox_command == "retry":
        count = await requeue_failed(settings, args.ids or None)
        print(f"requeued {count} failed message(s); a running warroom delivers them on its next tick")
        return 0
    entries, counts = await outbox_report(settings, include_delivered=args.all)
    for e in entries:
        incident = key_of(e.incident_number) if e.incident_number else "-"
        print(f"{e.id:>6} {e.status:<9} {e.platform:<8} {e.operation:<11} {incident:<8} attempts={e.attempts} "
              f"next={e.next_attempt_at:%Y-%m-%d %H:%M:%S} {e.summary!r}" + (f"\n       error: {e.last_error}"
                                                                            if e.last_error else ""))
    print(", ".join(f"{status}: {count}" for status, count in sorted(counts.items())) or "outbox is empty")
    return 0


async def _web(args: argparse.Namespace, settings: Settings) -> int:
    """`warroom web login NAME`: a one-time sign-in link for NAME, printed (it is that person's to open)."""
    from bot.app.bootstrap import offline

    name = " ".join(args.name.split())
    if not name:
        raise ValueError("say who signs in: warroom web login alice")
    async with offline(settings) as app:
        link = await app.sign_in.issue_link(name=name)
    print(link)
    print(f"Works once, for {settings.web.link_minutes:g} minutes.", file=sys.stderr)
    return 0


async def _contacts(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.bootstrap import offline

    csv_text = _read_text(args.file) if args.contacts_command == "import" else ""
    async with offline(settings) as app:
        briefs = app.service.briefs
        if args.contacts_command == "add":
            contact = await briefs.add_contact(tenant=args.tenant, name=args.name, phone=args.phone)
            print(f"added {contact.name} at {contact.tenant} ({contact.phone})")
        elif args.contacts_command == "remove":
            removed = await briefs.remove_contact(phone=args.phone, tenant=args.tenant)
            print(f"removed {removed} contact(s)" if removed else f"no contact {args.phone}")
            return 0 if removed else 1
        elif args.contacts_command == "import":
            added, skipped = await briefs.import_contacts(csv_text)
            print(f"imported {added} contact(s)" + "".join(f"\n  skipped {s}" for s in skipped))
        else:
            contacts = await briefs.contacts(args.tenant)
            for c in contacts:
                print(f"{c.tenant:<16} {c.phone:<16} {c.name}" + ("  (opted out)" if c.opted_out else ""))
            if not contacts:
                print("No contacts." + ("" if args.tenant
                                        else " Add one: warroom contacts add acme \"Jane Doe\" +254700000001"))
    return 0


async def _operators(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.bootstrap import offline
    from bot.briefs.templates import normalize_phone
    from bot.incident.key import key_of

    async with offline(settings) as app:
        desk = app.operators
        if args.operators_command == "add":
            added = await desk.add(phone=args.phone, name=args.name)
            print(f"added operator {args.name or args.phone}" if added else f"{args.phone} is already an operator")
        elif args.operators_command == "remove":
            listed = await desk.operator(normalize_phone(args.phone))
            if listed is not None and listed.from_environment:
                print(f"warroom: {listed.phone} is listed in WARROOM_WHATSAPP_OPERATORS; take it out of that list "
                      "and restart warroom to remove it", file=sys.stderr)
                return 1
            removed = await desk.remove(args.phone)
            if not removed:
                print(f"warroom: {args.phone} is not an operator (warroom operators list shows them)",
                      file=sys.stderr)
                return 1
            print(f"removed operator {args.phone}")
        else:
            operators = await desk.all()
            for o in operators:
                print(f"{o.phone:<16} {o.name}" + (f"  (on {key_of(o.current_incident)})" if o.current_incident else "")
                      + ("  (from WARROOM_WHATSAPP_OPERATORS)" if o.from_environment else ""))
            if not operators:
                print("No operators. Add one: warroom operators add +254700000001 --name alice")
    return 0


async def _oncall(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import timedelta

    from bot.app.bootstrap import offline
    from bot.oncall.render import board_message, gap_lines, saved_text
    from bot.oncall.roster import render_ics

    target = _writable(args.output) if getattr(args, "output", None) else None
    async with offline(settings) as app:
        roster = app.oncall
        what, action = args.oncall_command, getattr(args, "oncall_action", None)
        if what == "person" and action == "add":
            person = await roster.add_person(name=args.name, slack=args.slack, discord=args.discord,
                                             whatsapp=args.whatsapp, pagerduty=args.pagerduty, replace=args.replace)
            print(f"saved {person.name} ({', '.join(person.contact_points)})")
        elif what == "person" and action == "remove":
            await roster.remove_person(args.name)
            print(f"removed {args.name}")
        elif what == "person":
            people = await roster.people()
            for p in people:
                print(f"{p.name:<20} " + "  ".join(f"{k}={getattr(p, k) if k != 'pagerduty' else '…'}"
                                                   for k in p.contact_points))
            if not people:
                print("Nobody yet. Add someone: warroom oncall person add alice --slack U0123 --whatsapp +254700000011")
        elif what == "rotation" and action == "add":
            if len(args.weekly) < 3:
                raise ValueError("--weekly needs a weekday, a hand-off time and a timezone, then the people in "
                                 "turn order: --weekly mon 09:00 Africa/Nairobi alice bob carol")
            day, at, tz, *people = args.weekly
            saved = await roster.set_rotation(role=args.role, weekday=day, at=at, timezone=tz, people=people,
                                              starting=args.starting)
            print(saved_text(saved, show=roster.show))
        elif what == "rotation":
            rotations = await roster.rotations()
            for rotation in rotations:
                print(rotation.describe())
            if not rotations:
                print(f"No rotations. Roles: {', '.join(roster.roles)}")
        elif what == "override" and action == "add":
            saved = await roster.add_override(role=args.role, person=args.person, starts=args.starts,
                                              ends=args.ends, by="cli")
            print(saved_text(saved, show=roster.show))
        elif what == "override" and action == "remove":
            await roster.remove_override(args.id)
            print(f"removed override #{args.id}")
        elif what == "override":
            for shift in await roster.shifts(start=roster.now(), end=roster.now()
                                             + timedelta(weeks=args.weeks)):
                if shift.override:
                    print(f"{shift.role:<16} {shift.person:<16} {roster.show(shift.starts_at)} → "
                          f"{roster.show(shift.ends_at)}")
        elif what == "export":
            now = roster.now()
            # from a week back, so the shift running now is exported whole (its calendar event keeps its start)
            # and a week past the end, so the last shift is whole too
            horizon = now + timedelta(weeks=args.weeks)
            coming = [shift for shift in await roster.shifts(start=now - timedelta(weeks=1),
                                                             end=horizon + timedelta(weeks=1))
                      if shift.ends_at > now and shift.starts_at < horizon]
            text = render_ics(coming, now=now)
            if target is None:
                sys.stdout.write(text)
            else:
                _write_text(target, text)
                print(f"wrote {target}")
        elif what == "gaps":
            now = roster.now()
            found = await roster.gaps(start=now, end=now + timedelta(weeks=args.weeks))
            for line in gap_lines(found, show=roster.show):
                print(line)
            if not found:
                print(f"no gaps in the next {args.weeks} week(s)")
            return 1 if found else 0
        else:
            from adapters.text import to_text

            print(to_text(board_message(await roster.board(), show=roster.show, plan=roster.plan.name)))
    return 0


def _read_text(path: str) -> str:
    """A file the user named, or one line saying why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SystemExit(f"warroom: {path}: no such file") from None
    except IsADirectoryError:
        raise SystemExit(f"warroom: {path}: is a folder, not a file") from None
    except UnicodeDecodeError:
        raise SystemExit(f"warroom: {path}: not UTF-8 text") from None
    except OSError as problem:
        raise SystemExit(f"warroom: {path}: {problem.strerror or problem}") from None


def _writable(path: str) -> Path:
    """Checked before any work is done, so a bad -o fails at once and writes nothing."""
    target = Path(path)
    if target.is_dir():
        raise SystemExit(f"warroom: {path}: is a folder; give a file name, e.g. {target / 'inc-1.md'}")
    if not target.parent.is_dir():
        raise SystemExit(f"warroom: {path}: folder {target.parent} does not exist; create it first")
    return target


def _write_text(target: Path, text: str) -> None:
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as problem:
        raise SystemExit(f"warroom: cannot write {target}: {problem.strerror or problem}") from None


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
    postmortem.add_argument("--git", metavar="PATH",
                            help="commit it (and a draft playbook) to a branch of the git clone at PATH")
    postmortem.add_argument("--branch", help="with --git: the branch (default incident/inc-<n>-<slug>)")

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

    oncall = sub.add_parser("oncall", help="people, rotations and overrides; who is on call")
    oncall_sub = oncall.add_subparsers(dest="oncall_command", required=True)
    oncall_sub.add_parser("show", help="who is on call now and next per role")
    person = oncall_sub.add_parser("person", help="people who can be on call and their contact points")
    person_sub = person.add_subparsers(dest="oncall_action", required=True)
    person_add = person_sub.add_parser("add", help="add someone (at least one contact point)")
    person_add.add_argument("name")
    person_add.add_argument("--slack", help="Slack user id (U…)")
    person_add.add_argument("--discord", help="Discord user id")
    person_add.add_argument("--whatsapp", help="phone in E.164 form, e.g. +254700000011")
    person_add.add_argument("--pagerduty", help="PagerDuty Events API v2 routing (integration) key")
    person_add.add_argument("--replace", action="store_true", help="change the contact points of someone known")
    person_remove = person_sub.add_parser("remove", help="remove someone in no rotation or coming override")
    person_remove.add_argument("name")
    person_sub.add_parser("list", help="list people")
    rotation = oncall_sub.add_parser("rotation", help="who takes turns in a role")
    rotation_sub = rotation.add_subparsers(dest="oncall_action", required=True)
    rotation_add = rotation_sub.add_parser("add", help="set a role's rotation (replaces the one it has)")
    rotation_add.add_argument("role")
    rotation_add.add_argument("--weekly", nargs="+", required=True, metavar="DAY HH:MM TIMEZONE PERSON",
                              help="hand-off weekday, time and IANA timezone, then people in turn order")
    rotation_add.add_argument("--from", dest="starting", metavar="YYYY-MM-DD",
                              help="first hand-off on or after this date (default: the latest one, so the first "
                                   "person is on call now)")
    rotation_sub.add_parser("list", help="list rotations")
    override = oncall_sub.add_parser("override", help="someone holds a role for a while")
    override_sub = override.add_subparsers(dest="oncall_action", required=True)
    override_add = override_sub.add_parser("add", help="add an override (dates in the role's timezone)")
    override_add.add_argument("role")
    override_add.add_argument("person")
    override_add.add_argument("starts", metavar="FROM", help="YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    override_add.add_argument("ends", metavar="TO", help="YYYY-MM-DD (inclusive) or YYYY-MM-DDTHH:MM")
    override_remove = override_sub.add_parser("remove", help="remove an override by its number")
    override_remove.add_argument("id", type=int)
    override_list = override_sub.add_parser("list", help="overrides in the coming weeks")
    override_list.add_argument("--weeks", type=int, default=8)
    export = oncall_sub.add_parser("export", help="the coming shifts as an iCalendar file")
    export.add_argument("--ics", action="store_true", required=True, help="iCalendar (the only format)")
    export.add_argument("--weeks", type=int, default=12)
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    gaps = oncall_sub.add_parser("gaps", help="uncovered time per role in the coming weeks (exit 1 if any)")
    gaps.add_argument("--weeks", type=int, default=4)

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

    web = sub.add_parser("web", help="the web pages")
    web_sub = web.add_subparsers(dest="web_command", required=True)
    login = web_sub.add_parser("login", help="print a one-time sign-in link (10 minutes) for NAME")
    login.add_argument("name", help="who signs in (shown on the pages)")

    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="run migrations to the latest schema")
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], Coroutine[object, object, int]]] = {
    "console": _console, "serve": _serve, "run": _serve, "postmortem": _postmortem, "incidents": _incidents,
    "digest": _digest, "contacts": _contacts, "operators": _operators, "outbox": _outbox, "db": _db_upgrade,
    "web": _web,
    "oncall": _oncall,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bot.app.logs import configure_logging
    from bot.incident.domain import DomainError
    from playbooks.loader import PlaybookError

    try:
        settings = _settings()
        serving = args.command in ("serve", "run")
        # One-shot commands and the console speak only when something is wrong; a server logs at its level.
        configure_logging(level=settings.log_level if serving else "WARNING", fmt=settings.log_format)
        if args.command == "playbooks":
            return _playbooks_check(args, settings)
        return asyncio.run(COMMANDS[args.command](args, settings))
    except PlaybookError as problem:
        print(f"warroom: {problem}", file=sys.stderr)
        return 2
    except (ValueError, DomainError) as problem:  # bad input to a one-shot command (a phone, a CSV row, INC-99)
        print(f"warroom: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
