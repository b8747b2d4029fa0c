"""Pages a person reads about runs.

- ``blocks``: the page model (headings, paragraphs, tables, figures) and its Markdown/HTML renderers;
- ``run_page``: one run's ``report.html`` + ``report.md``;
- ``compare_page``: several runs side by side;
- ``browser``: opens a page in headless Chromium (Selenium) and checks it rendered cleanly;
- ``cli``: ``python -m tfcourse.report``.
"""

from tfcourse.report.compare_page import write_comparison  # noqa: F401  (the package's face)
from tfcourse.report.run_page import REPORT_HTML, REPORT_MD, ensure_evaluation, write_report  # noqa: F401
