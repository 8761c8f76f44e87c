"""HTTP endpoints that are not Telegram's webhook: the site form (`intake.py`,
``POST /api/leads``). The Mini App's page and JSON API are an area of their own
(handlers/webapp); handlers/routers.py `mount_http` puts both on an aiohttp app, which
bot/webhook.py and bot/webapp.py serve."""
