"""The Discord adapter: `/incident` app commands, a public thread per incident, the timeline from the thread.

- `chat.DiscordChat` — the core's ChatAdapter port (outbound: embeds, buttons, threads, edits, files).
- `bot.start_discord` — the client, the command group, buttons, the update form and gateway events (inbound).
- `settings.DiscordSettings` — DISCORD_BOT_TOKEN, DISCORD_GUILD_ID, DISCORD_INCIDENTS_CHANNEL_ID, DISCORD_API_URL.

Wiring (what `bot.app.bootstrap.build_server` does)::

    chat = discord_chat_from_settings(settings.discord)
    app = await build(settings, chat={"discord": chat})
    runtime = await start_discord(app.service, settings.discord, chat=chat)
    ...
    await runtime.stop(); await app.close()
"""
