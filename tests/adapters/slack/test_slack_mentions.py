"""Issue 14, "mentions nobody made": text that did not come from a Slack user writing in Slack is never a mention
in Slack; bare id-shaped words are words everywhere; a Slack user's own `<@U…>` may stay a mention."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from adapters.slack.blocks import render
from bot.incident import commands as cmd
from bot.incident.service import Context
from bot.ports import Actor, CustomerMessageReceived, Message, Room

LIVE_MENTION = re.compile(r"(?<!&lt;)<@[UW][A-Z0-9]+(\|[^>]*)?>")
CUSTOMER = "+254700000001"


def live_mentions(call) -> list[str]:
    """Mentions Slack would turn into a notification: `<@U…>` in mrkdwn (escaped `&lt;@U…&gt;` is text)."""
    return [m.group(0) for m in LIVE_MENTION.finditer(call.text())]


async def _customer_says(slack, text: str) -> None:
    await slack.app.operators.customer_event(CustomerMessageReceived(
        phone=CUSTOMER, text=text, message_id=f"wamid.{slack.next_id('M')}",
        at=datetime(2026, 11, 24, 7, 0, tzinfo=UTC)))


async def _with_a_customer(slack):
    await slack.service.briefs.add_contact(tenant="acme", name="Jane", phone=CUSTOMER)
    card = await slack.declare('declare P1 "Payments callbacks not arriving" tenant=acme')
    return card.response["ts"]


async def test_a_customers_payment_reference_that_looks_like_a_user_id_is_not_a_mention(slack):
    thread = await _with_a_customer(slack)

    await _customer_says(slack, "M-Pesa ref UBK4X7Q2ZP")

    [reply] = await slack.fake.wait_calls("chat.postMessage", where=lambda c: "replied" in c.params["text"])
    assert reply.params["thread_ts"] == thread
    assert "M-Pesa ref UBK4X7Q2ZP" in reply.text() and live_mentions(reply) == []


async def test_a_customer_who_writes_a_slack_mention_notifies_nobody(slack):
    await _with_a_customer(slack)

    await _customer_says(slack, "hello <@U0BOB0002> and <@U123|boss> <!channel>")

    [reply] = await slack.fake.wait_calls("chat.postMessage", where=lambda c: "replied" in c.params["text"])
    assert live_mentions(reply) == []
    assert "<!channel>" not in reply.text()


async def test_a_ticket_number_in_a_slack_users_status_is_a_word(slack):
    card = await slack.declare()

    await slack.mention('status "ticket W12345678 reopened, UBK4X7Q2ZP refunded"', thread=card.response["ts"])

    [status] = await slack.fake.wait_calls("chat.postMessage", where=lambda c: "Status update" in c.params["text"])
    assert "ticket W12345678 reopened, UBK4X7Q2ZP refunded" in status.text() and live_mentions(status) == []


async def test_a_slack_users_own_mention_in_their_status_stays_a_mention(slack):
    card = await slack.declare()

    await slack.mention('status "handing over to <@U0BOB0002|bob>"', thread=card.response["ts"])

    [status] = await slack.fake.wait_calls("chat.postMessage", where=lambda c: "Status update" in c.params["text"])
    assert set(live_mentions(status)) == {"<@U0BOB0002>"}


async def test_an_operators_status_from_a_phone_is_no_mention_in_the_slack_thread(slack):
    card = await slack.declare()
    phone = Context(actor=Actor(id="+254700000011", name="alice"), room=Room("whatsapp", "+254700000011"))

    await slack.service.execute(phone, cmd.PostStatus(incident=1, text="ping <@U0BOB0002> about UBK4X7Q2ZP"))

    [status] = await slack.fake.wait_calls("chat.postMessage", where=lambda c: "Status update" in c.params["text"])
    assert status.params["thread_ts"] == card.response["ts"]
    assert live_mentions(status) == [] and "@bob" in status.text()  # the reference reads as a name, as text


def test_alert_text_and_the_bots_own_messages_never_mention() -> None:
    for message in (Message(text="disk full on <@U0BOB0002> host W12345678", kind="alert"),
                    Message(text="from discord: <@U0BOB0002>", mentions_from="discord"),
                    Message(title="INC-1", fields=(), text="<@U0BOB0002> UBK4X7Q2ZP", kind="card")):
        fallback, blocks = render(message)
        shown = fallback + json.dumps(blocks)
        assert not LIVE_MENTION.search(shown), shown
    fallback, _ = render(Message(text="thanks <@U0BOB0002>", mentions_from="slack"))
    assert fallback == "thanks <@U0BOB0002>"


async def test_the_channel_announcement_and_card_show_names_not_mentions(make_slack):
    slack = await make_slack()
    card = await slack.declare()
    await slack.mention("role ic <@U0CAROL03|carol>", thread=card.response["ts"])

    [update] = await slack.fake.wait_calls("chat.update")
    assert live_mentions(update) == [] and "@carol" in update.text()
