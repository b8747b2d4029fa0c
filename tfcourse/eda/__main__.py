"""``python -m tfcourse.eda``."""

import sys

from tfcourse.eda.cli import main

sys.exit(main())
