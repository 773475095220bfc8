"""``python -m landforge.cli``."""

import sys

from landforge.cli import main

sys.exit(main())
