"""Training a model: compile from hyperparameters or a recipe, callbacks and schedules, divergence
checks (``fit``), and transfer learning from a pretrained base (``transfer``).
"""
