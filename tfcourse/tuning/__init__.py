"""Hyperparameter tuning with KerasTuner.

- ``hparams``: the hyperparameter spaces, ``--hp`` values and ``--space`` narrowing;
- ``tuners``: the hypermodel, the tuner factory (RandomSearch / Hyperband / Bayesian, budget, CV folds,
  pruning, atomic oracle state), trial progress lines and reading KerasTuner's state back.
"""
