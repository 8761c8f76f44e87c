"""The client's side of the bot (issue 25): linking a client's Telegram to their contact,
what they see of their orders, and what they answer (confirm, reschedule, accept, rate).
On top of work and sales, next to intake and reports; a client acts as a
`services.permissions.ClientActor`, checked by `require_client` every time."""
