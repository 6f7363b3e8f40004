"""``python -m debtgate.cli``: the ``debtgate`` command."""

import sys

from debtgate.cli.main import main

sys.exit(main())
