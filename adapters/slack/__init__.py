"""Slack adapter: `SlackChat` (the ChatAdapter port over slack-sdk's AsyncWebClient, `chat.py`), Block Kit
rendering and escaping (`blocks.py`), and the slack-bolt wiring from Slack payloads to the service (`app.py`).

Nothing is imported here on purpose: `import adapters.slack` must not pull in slack-sdk, so a process that
does not run Slack never pays for it. Import `adapters.slack.chat` / `adapters.slack.app` explicitly.
"""
