"""WhatsApp Cloud API (Meta's Graph API): outbound messages to customers' phones and the inbound webhook.

    from adapters.whatsapp.client import WhatsAppCloud          # CustomerMessenger over httpx
    from adapters.whatsapp.routes import whatsapp_routes        # GET/POST /whatsapp/webhook (Starlette)
    from adapters.whatsapp.settings import WhatsAppSettings     # WHATSAPP_* from the environment / .env
    from adapters.whatsapp.webhook import parse_webhook, verify_signature   # pure functions

Nothing is imported here, so `import adapters.whatsapp` loads neither httpx nor starlette.
"""
