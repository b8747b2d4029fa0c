"""What a trained model does on data it has not seen.

- ``evaluate``: predictions -> numbers (classification report, confusion matrix, top-k, binary thresholds);
- ``artifacts``: a run folder or an export read back as the report and explanations see it (``Run``);
- ``inference``: a person's own image files through a run's model or its export.
"""
