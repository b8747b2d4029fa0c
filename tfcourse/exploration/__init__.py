"""The exploratory data analysis as numbers (no drawing; the page is ``tfcourse.pages.eda_page``).

- ``stats``: the numbers (classes, pixels, extent, correlation, PCA, duplicates, anomalies, neighbours,
  embeddings);
- ``features``: Sobel edges, HOG, the logistic-regression comparison and the augmentation check;
- ``analysis``: every section in order, timed, and the implications read off the numbers;
- ``table_eda``: a table's columns, balance and features by class.

The command is ``python -m tfcourse.eda``. This face imports nothing, so its ``--help`` stays fast.
"""
