"""``python -m tfcourse.report``."""

import sys

from tfcourse.report.cli import main

sys.exit(main())
