"""The jobs the commands start, each one config in and one folder out.

- ``image_run``: ``train_and_evaluate(TrainConfig)``, an image model's run folder, step by step;
- ``table_run``: ``train_table(TableConfig)``, a table model's run folder;
- ``search``: ``run_search(TuneConfig)``, a KerasTuner search, its summaries and page, and the retrained best.
"""
