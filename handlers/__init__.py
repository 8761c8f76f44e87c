"""The Telegram front-end: one package per area (router + views), shared UI in `ui/`."""
