"""``python -m tfcourse.export``: see ``tfcourse.export.cli``."""

import sys

from tfcourse.export.cli import main

sys.exit(main())
