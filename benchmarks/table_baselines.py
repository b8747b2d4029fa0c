"""Seattle's "will it rain tomorrow?" (``--dataset seattle_weather``): tfcourse's ``tabular_mlp`` (the
train command's defaults) against the majority class, a scikit-learn logistic regression and a
gradient-boosted tree (``HistGradientBoostingClassifier``), on the very same splits.

Every model sees the same training rows; its decision threshold is chosen on the same validation rows
to maximise F1 of the rain class (``evaluate.choose_threshold``, as the network's); the test rows give
ROC-AUC, F1 of ``Yes`` and accuracy. The test split has only 146 rows, so one split says little: the
stratified protocol is repeated over 5 seeds (split, initialisation, shuffling), the time split (train
on 2012 to mid-2015, test on its last months) over 5 seeds of the models; mean and standard deviation.

    python benchmarks/table_baselines.py
"""

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _tables  # noqa: E402

from tfcourse.config import TableConfig, TableDataConfig  # noqa: E402
from tfcourse.evaluation import evaluate
from tfcourse.jobs import table_run  # noqa: E402

MODELS = ("majority class", "logistic regression", "gradient-boosted trees", "tfcourse tabular_mlp")


def frame(dataset, rows):
    import pandas as pd

    return pd.DataFrame({name: values[rows] for name, values in dataset.columns.items()})


def sklearn_model(name: str, dataset, seed: int):
    """The scikit-learn pipeline of ``name``: each handles missing values and categories the usual way."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric = [n for n, k in dataset.kinds.items() if k == "numeric"]
    categorical = [n for n, k in dataset.kinds.items() if k == "categorical"]
    if name == "logistic regression":  # imputed + indicator, standardised; one-hot categories
        columns = ColumnTransformer(
            [
                ("numbers", make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), numeric),
                ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        )
        return make_pipeline(columns, LogisticRegression(max_iter=2000))
    # the trees take NaN as it is and categories natively
    columns = ColumnTransformer(
        [
            ("numbers", "passthrough", numeric),
            (
                "categories",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
                categorical,
            ),
        ]
    )
    trees = HistGradientBoostingClassifier(
        categorical_features=list(range(len(numeric), len(numeric) + len(categorical))), random_state=seed
    )
    return make_pipeline(columns, trees)


def scores(labels, probabilities, threshold):
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    predicted = (probabilities >= threshold).astype(int)
    return {
        "roc_auc": roc_auc_score(labels, probabilities),
        "f1": f1_score(labels, predicted, zero_division=0),
        "accuracy": accuracy_score(labels, predicted),
    }


def one_split(split: str, seed: int, scratch: str):
    """Every model on one split: ``{model: scores}``."""
    data = TableDataConfig(split=split)
    run = table_run.train_table(
        TableConfig(seed=seed, report=False, output_dir=os.path.join(scratch, f"{split}-{seed}"), data=data)
    )
    dataset, splits = run.dataset, run.splits
    y = {part: dataset.y[getattr(splits, part)] for part in ("train", "val", "test")}
    results = {
        "tfcourse tabular_mlp": {
            "roc_auc": run.metrics["roc_auc"],
            "f1": run.metrics["classification_report"]["Yes"]["f1-score"],
            "accuracy": run.metrics["accuracy"],
        }
    }
    majority = np.full(len(y["test"]), float(np.bincount(y["train"]).argmax()))
    results["majority class"] = scores(y["test"], majority, 0.5)
    for name in ("logistic regression", "gradient-boosted trees"):
        model = sklearn_model(name, dataset, seed).fit(frame(dataset, splits.train), y["train"])
        val = model.predict_proba(frame(dataset, splits.val))[:, 1]
        threshold = evaluate.choose_threshold(y["val"], val, "f1")["threshold"]
        results[name] = scores(y["test"], model.predict_proba(frame(dataset, splits.test))[:, 1], threshold)
    return results, splits.sizes()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "table_baselines.md"))
    args = parser.parse_args(argv)

    sections = []
    with tempfile.TemporaryDirectory() as scratch:
        for split, title in (("stratified", "stratified random split"), ("time", "time split (test = the last 10%)")):
            per_seed = []
            for seed in range(args.seeds):
                results, sizes = one_split(split, seed, scratch)
                per_seed.append(results)
                print(f"{split} seed {seed}: " + "; ".join(f"{m} AUC {r['roc_auc']:.3f}" for m, r in results.items()))
            lines = [
                "| model | test ROC-AUC | F1 of rain (Yes) | accuracy |",
                "|---|---:|---:|---:|",
            ]
            for model in MODELS:
                cells = []
                for key in ("roc_auc", "f1", "accuracy"):
                    values = np.array([results[model][key] for results in per_seed])
                    cells.append(f"{values.mean():.3f} ± {values.std():.3f}")
                lines.append(f"| {model} | " + " | ".join(cells) + " |")
            network = np.array([r["tfcourse tabular_mlp"]["roc_auc"] for r in per_seed])
            wins = [
                f"{rival} on {int(np.sum(network > np.array([r[rival]['roc_auc'] for r in per_seed])))}"
                for rival in ("logistic regression", "gradient-boosted trees")
            ]
            lines.append(
                f"\nThe network's test ROC-AUC is above that of {' and '.join(wins)} of {len(per_seed)} seeds."
            )
            sections.append(
                f"## {title}\n\nRows: {', '.join(f'{k} {v}' for k, v in sizes.items())}; mean ± standard "
                f"deviation over {args.seeds} seeds.\n\n" + "\n".join(lines) + "\n"
            )
    text = (
        "Seattle weather 2012-2015, will it rain tomorrow (`--dataset seattle_weather`). Every model trains on the "
        "same rows, chooses its threshold on the same validation rows (best F1 of Yes) and is scored on the same "
        "test rows. Logistic regression: mean imputation with missing indicators, standardised numbers, one-hot "
        "weather. Gradient-boosted trees: scikit-learn's HistGradientBoostingClassifier with its defaults, NaN and "
        "categories native. The network: `python -m tfcourse.train --dataset seattle_weather` defaults.\n\n"
        + "\n".join(sections)
    )
    _tables.publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
