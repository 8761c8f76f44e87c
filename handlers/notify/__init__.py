"""The notifier's view: an outbox delivery (the payloads the services enqueue) as a Telegram
message — text (HTML) and keyboard in the recipient's language.

`views.py` holds one view per outbox kind (drawn with the same pieces as the bot's cards:
handlers/ui/task_card.py, handlers/ui/deal_card.py, handlers/funnel/views.py), `message.py`
puts one or several items into a message. bot/notifier.py sends what `render` returns. Pure
functions, so tests look at text and keyboard directly.
"""

from __future__ import annotations

from handlers.notify.message import render
from handlers.notify.views import delay_text

__all__ = ["delay_text", "render"]
