"""``python -m bot`` is the ``voronka`` command."""

import sys

from bot.cli import main

sys.exit(main())
