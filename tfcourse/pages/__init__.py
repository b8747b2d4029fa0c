"""Everything a person reads: figures and pages, written as Markdown and self-contained HTML.

- ``blocks``: the page model (headings, paragraphs, tables, figures) and its Markdown/HTML renderers;
- ``plots``: the figures, drawn headless;
- ``run_page`` / ``table_run_page``: one run's ``report.html`` + ``report.md``;
- ``compare_page``: several runs side by side; ``eda_page`` / ``table_eda_page``: the EDA pages;
- ``search_page``: a search's summaries and page; ``gallery``: a run's explanations as files;
- ``browser``: opens a page in headless Chromium (Selenium) and checks it rendered cleanly.

This face imports nothing, so ``python -m tfcourse.report --help`` does not load TensorFlow.
"""
