"""Customer briefs through the service: preview, confirm, per-recipient outcomes, opt-out, webhooks, ETA."""

from __future__ import annotations

import json

import pytest

from adapters.memory import MemoryChat, MemoryWhatsApp
from bot.app.bootstrap import build
from bot.ports import CustomerMessageReceived, CustomerMessageStatus, DeliveryError
from tests.support import Harness

JANE, JOHN, GLO = "+254700000001", "+254700000002", "+14155550100"


@pytest.fixture
async def desk(settings, clock):
    chat, whatsapp = MemoryChat("console"), MemoryWhatsApp()
    app = await build(settings, chat={"console": chat}, clock=clock, messenger=whatsapp)
    team = Harness(app=app, chat=chat, clock=clock, settings=settings)
    team.whatsapp = whatsapp
    briefs = app.service.briefs
    await briefs.add_contact(tenant="acme", name="Jane", phone="+254 700 000 001")
    await briefs.add_contact(tenant="acme", name="John", phone=JOHN)
    await briefs.add_contact(tenant="globex", name="Gloria", phone=GLO)
    yield team
    await app.close()


async def _timeline(team, number=1):
    async with team.service._uow() as uow:
        return await uow.incidents.timeline(number)


async def test_preview_shows_who_and_the_text_and_sends_nothing(desk):
    await desk.ok('declare P1 "Payments callbacks not arriving" tenant=acme')
    thread = await desk.room(1)
    preview = await desk.ok("brief all-affected area=payments", room=thread)
    message = preview.message
    assert message.title.startswith("Brief preview #1 for INC-1 · template investigating")
    assert {f.label: f.value for f in message.fields}["Message"] == (
        "We know there is a problem with payments and we are working on a fix. Our next update will be in 15 minutes.")
    assert f"→ Jane at acme ({JANE})" in message.text and f"→ John at acme ({JOHN})" in message.text
    assert [(b.action, b.value) for b in message.buttons] == [("brief_send", "1")]
    assert desk.whatsapp.sent == []


async def test_confirm_sends_a_template_per_recipient_and_records_each_in_the_timeline(desk):
    await desk.ok('declare P1 "Payments down" tenant=acme')
    thread = await desk.room(1)
    await desk.ok("brief acme area=payments eta=30", room=thread)
    await desk.ok("brief send 1", room=thread)
    assert [(m["to"], m["type"], m["template"], m["parameters"]) for m in desk.whatsapp.sent] == [
        (JANE, "template", "incident_investigating", ["payments", "30"]),
        (JOHN, "template", "incident_investigating", ["payments", "30"])]
    texts = [e.text for e in await _timeline(desk)]
    assert f"brief (investigating) sent to Jane at acme ({JANE}) via template" in texts
    assert f"brief (investigating) sent to John at acme ({JOHN}) via template" in texts
    again = await desk.run("brief send 1", room=thread)
    assert not again.ok and again.message.text == "Brief #1 was already sent."
    assert len(desk.whatsapp.sent) == 2
    markdown = await desk.service.export_postmortem(1)
    assert f"brief (investigating) sent to Jane at acme ({JANE})" in markdown


async def test_send_flag_skips_the_preview_and_the_button_confirms(desk):
    await desk.ok('declare P1 "x" tenant=globex')
    thread = await desk.room(1)
    await desk.ok("brief globex --send", room=thread)
    assert [m["to"] for m in desk.whatsapp.sent] == [GLO]
    await desk.ok("brief globex update", room=thread)
    from bot.incident.service import Context
    from bot.ports import Actor
    await desk.service.press_button(Context(actor=Actor("u", "alice"), room=thread), action="brief_send", value="2")
    assert desk.whatsapp.sent[-1]["template"] == "incident_update"


async def test_free_text_inside_the_24_hour_window_and_template_fallback_on_131047(desk):
    await desk.ok('declare P1 "x" tenant=acme')
    thread = await desk.room(1)
    now = desk.clock.now()
    await desk.app.operators.customer_event(CustomerMessageReceived(phone=JANE, text="is it down?",
                                                                    message_id="wamid.in1", at=now))
    desk.whatsapp.fail(JANE, DeliveryError("outside window", code=131047, permanent=True,
                                                  window_closed=True))
    await desk.ok("brief acme --send", room=thread)
    sent = {(m["to"], m["type"]) for m in desk.whatsapp.sent}
    assert sent == {(JANE, "template"), (JOHN, "template")}  # Jane's free text bounced (131047) → template
    assert any("outside WhatsApp's 24-hour window" in t for t in desk.chat.texts(thread))
    desk.clock.advance(minutes=5)
    await desk.app.operators.customer_event(CustomerMessageReceived(phone=JOHN, text="thanks", message_id="wamid.in2",
                                                              at=desk.clock.now()))
    await desk.ok("brief acme --send", room=thread)
    assert (JOHN, "text") in {(m["to"], m["type"]) for m in desk.whatsapp.sent}


async def test_one_failing_recipient_does_not_stop_the_others_and_is_reported(desk):
    await desk.ok('declare P1 "x" tenant=acme,globex')
    thread = await desk.room(1)
    desk.whatsapp.fail(JANE, DeliveryError("recipient not a WhatsApp user", code=131026, permanent=True))
    await desk.ok("brief all-affected --send", room=thread)
    assert {m["to"] for m in desk.whatsapp.sent} == {JOHN, GLO}
    assert any(t.startswith(f"Brief to Jane at acme ({JANE}) failed: 131026") for t in desk.chat.texts(thread))
    assert any(e.kind.value == "brief_failed" for e in await _timeline(desk))


async def test_rate_limited_recipient_is_retried_after_the_wait(desk):
    await desk.ok('declare P1 "x" tenant=globex')
    thread = await desk.room(1)
    desk.whatsapp.fail(GLO, DeliveryError("throughput", code=130429, retry_after=10))
    await desk.ok("brief globex --send", room=thread)
    assert desk.whatsapp.sent == []
    desk.clock.advance(seconds=10)
    await desk.app.outbox.drain()
    assert [m["to"] for m in desk.whatsapp.sent] == [GLO]


async def test_stop_opts_out_start_opts_back_in_and_preview_shows_it(desk):
    await desk.ok('declare P1 "x" tenant=acme')
    thread = await desk.room(1)
    await desk.app.operators.customer_event(CustomerMessageReceived(phone=JANE, text=" stop ", message_id="w1",
                                                              at=desk.clock.now()))
    assert desk.whatsapp.sent[-1] == {"to": JANE, "type": "text", "id": desk.whatsapp.sent[-1]["id"],
                                      "text": "You will no longer get incident updates from us. Reply START to get "
                                              "them again."}
    preview = await desk.ok("brief acme", room=thread)
    assert f"✗ skipped (opted out) Jane at acme ({JANE})" in preview.message.text
    await desk.ok("brief send 1", room=thread)
    assert [m["to"] for m in desk.whatsapp.sent if m["type"] == "template"] == [JOHN]
    await desk.app.operators.customer_event(CustomerMessageReceived(phone=JANE, text="START", message_id="w2",
                                                              at=desk.clock.now()))
    preview = await desk.ok("brief acme", room=thread)
    assert f"→ Jane at acme ({JANE})" in preview.message.text


async def test_customer_replies_land_in_the_thread_and_duplicates_are_ignored(desk):
    await desk.ok('declare P1 "x" tenant=acme')
    thread = await desk.room(1)
    event = CustomerMessageReceived(phone=JOHN, text="our till is still failing", message_id="wamid.r1",
                                    at=desk.clock.now())
    await desk.app.operators.customer_event(event)
    await desk.app.operators.customer_event(event)  # WhatsApp retries webhooks
    replies = [t for t in desk.chat.texts(thread) if t.startswith("💬 Customer John at acme")]
    assert replies == [f"💬 Customer John at acme ({JOHN}) replied: our till is still failing"]


async def test_delivery_statuses_update_recipients_and_failures_are_reported(desk):
    await desk.ok('declare P1 "x" tenant=acme')
    thread = await desk.room(1)
    await desk.ok("brief acme --send", room=thread)
    jane_id = next(m["id"] for m in desk.whatsapp.sent if m["to"] == JANE)
    john_id = next(m["id"] for m in desk.whatsapp.sent if m["to"] == JOHN)
    now = desk.clock.now()
    await desk.app.operators.customer_event(CustomerMessageStatus(message_id=jane_id, status="read", at=now))
    await desk.app.operators.customer_event(CustomerMessageStatus(message_id=jane_id, status="delivered", at=now))
    await desk.app.operators.customer_event(CustomerMessageStatus(message_id=john_id, status="failed", at=now,
                                                            error_code=131047, error_title="Re-engagement message",
                                                            window_closed=True))
    async with desk.service._uow() as uow:
        statuses = {r.phone: r.status for r in await uow.customers.recipients(1)}
    assert statuses == {JANE: "read", JOHN: "failed"}  # read is not stepped back to delivered
    # John's brief was the template already: the failure is reported, and no command is suggested that would
    # brief the whole tenant again.
    assert f"Brief to John at acme ({JOHN}) failed: 131047: Re-engagement message." in desk.chat.texts(thread)
    assert not any("--send" in t for t in desk.chat.texts(thread))


async def test_eta_reminds_the_thread_that_customers_were_promised_an_update(desk):
    await desk.ok('declare P2 "x" tenant=acme')
    thread = await desk.room(1)
    await desk.ok("ack", room=thread)
    await desk.ok("brief acme eta=20 --send", room=thread)
    await desk.tick(minutes=19)
    assert desk.kinds("reminder") == []
    await desk.tick(minutes=1)
    assert desk.kinds("reminder") == ["INC-1: customers were promised an update by now. Send one: "
                                      "/incident brief all-affected update"]


async def test_brief_errors_are_clear(desk):
    await desk.ok('declare P1 "x"')
    thread = await desk.room(1)
    none = await desk.run("brief all-affected", room=thread)
    assert none.message.text == "INC-1 has no affected customers yet: /incident affects acme,globex."
    unknown = await desk.run("affects initech", room=thread)
    assert unknown.message.text == ("Unknown tenant initech. Known tenants: acme, globex "
                                    "(add contacts with `warroom contacts add`).")
    bad_template = await desk.run("brief acme nope", room=thread)
    assert bad_template.message.text == ("No brief template 'nope'. "
                                         "Templates: investigating, operator-update, resolved, update.")
    missing = await desk.run("brief send 9", room=thread)
    assert missing.message.text == "No brief #9; prepare one with /incident brief <tenant>."
    await desk.ok("affects acme", room=thread)
    assert desk.chat.texts(thread)[-1].startswith("INC-1 affects acme (added acme by alice)")


async def test_resolved_incident_defaults_to_the_resolved_template(desk):
    await desk.ok('declare P1 "x" tenant=acme')
    thread = await desk.room(1)
    await desk.ok("resolve", room=thread)
    preview = await desk.ok("brief acme area=payments", room=thread)
    assert "template resolved (resolved)" in preview.message.title


async def test_contacts_validation_and_csv_import(desk, tmp_path):
    briefs = desk.service.briefs
    with pytest.raises(ValueError, match="not a phone number in E.164 form"):
        await briefs.add_contact(tenant="acme", name="X", phone="0700 000")
    with pytest.raises(ValueError, match="already a contact of acme"):
        await briefs.add_contact(tenant="acme", name="Jane again", phone=JANE)
    with pytest.raises(ValueError, match="nothing imported; fix these rows: line 3: '12' is not a phone number"):
        await briefs.import_contacts("tenant,name,phone\ninitech,Peter,+15550000001\ninitech,Bill,12\n")
    assert [c.tenant for c in await briefs.contacts()].count("initech") == 0
    added, skipped = await briefs.import_contacts(f"tenant,name,phone\ninitech,Peter,+15550000001\nacme,Jane,{JANE}\n")
    assert added == 1 and skipped == [f"{JANE} (acme) already present"]
    assert await briefs.remove_contact(phone="+15550000001") == 1
    assert await briefs.remove_contact(phone="+15550000001") == 0


async def test_contacts_cli(tmp_path):
    import subprocess
    import sys

    from tests.processes import child_env

    env = child_env(WARROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}")
    run = lambda *a: subprocess.run([sys.executable, "-m", "bot.app.cli", "contacts", *a], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=60)
    assert run("add", "acme", "Jane Doe", "+254700000001").stdout.strip() == "added Jane Doe at acme (+254700000001)"
    bad = run("add", "acme", "X", "12345")
    assert bad.returncode == 1 and "E.164" in bad.stderr
    (tmp_path / "c.csv").write_text("tenant,name,phone\nglobex,Gloria,+14155550100\n")
    assert run("import", "c.csv").stdout.strip() == "imported 1 contact(s)"
    listing = run("list").stdout
    assert "acme             +254700000001    Jane Doe" in listing and "globex" in listing
    assert run("remove", "+14155550100").stdout.strip() == "removed 1 contact(s)"


async def test_show_and_postmortem_list_each_recipients_delivery(desk):
    """Delivered and read statuses were stored but shown nowhere: `/incident show` and the post-mortem
    (Markdown and JSON) give each recipient's outcome."""
    await desk.ok('declare P1 "Payments down" tenant=acme,globex')
    thread = await desk.room(1)
    desk.whatsapp.fail(GLO, DeliveryError("recipient not a WhatsApp user", code=131026, permanent=True))
    await desk.ok("brief all-affected --send", room=thread)
    jane_id = next(m["id"] for m in desk.whatsapp.sent if m["to"] == JANE)
    john_id = next(m["id"] for m in desk.whatsapp.sent if m["to"] == JOHN)
    now = desk.clock.now()
    await desk.app.operators.customer_event(CustomerMessageStatus(message_id=jane_id, status="delivered", at=now))
    await desk.app.operators.customer_event(CustomerMessageStatus(message_id=jane_id, status="read", at=now))
    await desk.app.operators.customer_event(CustomerMessageStatus(message_id=john_id, status="delivered", at=now))

    shown = {f.label: f.value for f in (await desk.ok("show", room=thread)).message.fields}
    assert shown["Customer briefs"].splitlines() == [
        "#1 investigating to acme,globex: 1 read · 1 delivered · 1 failed",
        f"  Jane at acme ({JANE}): read (template)",
        f"  John at acme ({JOHN}): delivered (template)",
        f"  Gloria at globex ({GLO}): failed: 131026: recipient not a WhatsApp user"]

    markdown = await desk.service.export_postmortem(1)
    section = markdown.split("### Customer briefs")[1].split("###")[0]
    assert f"| #1 investigating | Jane at acme ({JANE}) | read (template) |" in section
    assert f"| #1 investigating | John at acme ({JOHN}) | delivered (template) |" in section
    assert f"| #1 investigating | Gloria at globex ({GLO}) | failed: 131026: recipient not a WhatsApp user |" in section
    document = json.loads(await desk.service.export_postmortem(1, "json"))
    [brief] = document["customer_briefs"]
    assert [(r["name"], r["status"]) for r in brief["recipients"]] == [
        ("Jane", "read"), ("John", "delivered"), ("Gloria", "failed")]


async def test_show_without_briefs_has_no_delivery_field_and_the_postmortem_says_none(desk):
    await desk.ok('declare P1 "x"')
    thread = await desk.room(1)
    await desk.ok('brief acme', room=thread)  # a preview only: nothing sent
    shown = {f.label for f in (await desk.ok("show", room=thread)).message.fields}
    assert "Customer briefs" not in shown
    assert "### Customer briefs\n\n_no customer briefs sent_" in await desk.service.export_postmortem(1)
