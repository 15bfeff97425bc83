"""warroom's core: incident domain, command parsing, use cases, reminders and post-mortems.

Nothing here imports a chat SDK, an HTTP client or the ORM: the world comes in through the ports in
`bot.ports`, and `bot.app.bootstrap` is the one place that wires real adapters and storage in.
"""
