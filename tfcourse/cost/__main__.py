"""``python -m tfcourse.cost``."""

import sys

from tfcourse.cost.cli import main

sys.exit(main())
