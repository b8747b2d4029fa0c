"""Pages a person reads about runs.

- ``blocks``: the page model (headings, paragraphs, tables, figures) and its Markdown/HTML renderers;
- ``run_page``: one run's ``report.html`` + ``report.md`` (``write_report``);
- ``compare_page``: several runs side by side (``write_comparison``);
- ``browser``: opens a page in headless Chromium (Selenium) and checks it rendered cleanly;
- ``cli``: ``python -m tfcourse.report``.

This face imports nothing, so ``python -m tfcourse.report --help`` does not load TensorFlow.
"""
