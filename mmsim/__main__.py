"""``python -m mmsim``: the command line."""

import sys

from mmsim.cli import main

sys.exit(main())
