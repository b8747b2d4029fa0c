"""``python -m tfcourse.explain``."""

import sys

from tfcourse.explain.cli import main

sys.exit(main())
