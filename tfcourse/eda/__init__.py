"""Exploratory data analysis of an image dataset.

- ``stats``: the numbers (classes, pixels, extent, correlation, PCA, duplicates, anomalies, neighbours,
  embeddings);
- ``features``: Sobel edges, HOG, the logistic-regression comparison and the augmentation check;
- ``analysis``: every section in order, timed, and the implications read off the numbers;
- ``cli``: ``python -m tfcourse.eda`` (the page itself is ``tfcourse.report.eda_page``).

This face imports nothing, so ``python -m tfcourse.eda --help`` stays fast.
"""
