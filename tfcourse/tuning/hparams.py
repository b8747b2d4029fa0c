"""Hyperparameter spaces: what a model (and its compilation) declares, ``--hp KEY=VALUE`` values
checked against it, and ``--space KEY=VALUES`` narrowed search spaces.

Every builder declares its hyperparameters on a ``keras_tuner.HyperParameters`` with defaults, so one
space serves ``tfcourse.train`` (``make_hyperparameters``: defaults plus fixed values), ``--list-hp``
and ``tune --show-space`` (``hyperparameter_space`` + ``describe_space``), and the tuners
(``make_search_space``).
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import keras
import keras_tuner

from tfcourse.models import build_model
from tfcourse.training.fit import make_optimizer


def parse_hp_value(text: str) -> Any:
    """Parses ``--hp key=value`` values: JSON scalars (``3``, ``0.5``, ``true``) or bare strings."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    if not isinstance(value, (int, float, str)):
        raise ValueError(f"Hyperparameter value {text!r} must be a number, true/false or a string.")
    return value


BATCH_SIZES = [32, 64, 128, 256]


def batch_size_hp(hp, default: int) -> int:
    """The ``batch_size`` hyperparameter of a search (choices 32..256 plus the data's default)."""
    return hp.Choice("batch_size", sorted(set(BATCH_SIZES) | {int(default)}), default=int(default))


def hyperparameter_space(model_name, input_shape: Sequence[int], num_classes: int, batch_size: Optional[int] = None):
    """Every hyperparameter a model (and its compilation) declares, with defaults.

    Args:
        model_name: A registered name, or a builder ``build(hp, input_shape, num_classes)``.
        batch_size: Also declare the ``batch_size`` hyperparameter searches tune, with
            this default (``None``: leave it out, as ``tfcourse.train`` does).

    Returns:
        A ``keras_tuner.HyperParameters`` holding the space.
    """
    hp = keras_tuner.HyperParameters()
    if callable(model_name):
        model_name(hp, tuple(input_shape), num_classes)
    else:
        build_model(model_name, hp, input_shape, num_classes)
    make_optimizer(hp)
    if batch_size is not None:
        batch_size_hp(hp, batch_size)
    policy = keras.config.dtype_policy()  # clear_session resets the global policy: the caller's stays
    keras.backend.clear_session()
    keras.config.set_dtype_policy(policy)
    return hp


def describe_space(hp) -> List[Dict[str, Any]]:
    """One dict per hyperparameter: name, type and its settings (range, step, sampling, choices, default)."""
    rows = []
    for entry in hp.space:
        settings = {k: v for k, v in entry.get_config().items() if k not in ("name", "conditions") and v is not None}
        rows.append({"name": entry.name, "type": type(entry).__name__, **settings})
    return rows


def _shape_text(input_shape: Sequence[int]) -> str:
    return "x".join(str(int(side)) for side in input_shape)


def _check_value(entry, value) -> Optional[str]:
    config = entry.get_config()
    kind = type(entry).__name__
    if kind == "Boolean":
        return None if isinstance(value, bool) else "true or false"
    if kind == "Choice":
        return None if value in config["values"] else f"one of {config['values']}"
    if kind in ("Int", "Float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"a number in [{config['min_value']}, {config['max_value']}]"
        if kind == "Int" and int(value) != value:
            return f"an integer in [{config['min_value']}, {config['max_value']}]"
        if not config["min_value"] <= value <= config["max_value"]:
            return f"in [{config['min_value']}, {config['max_value']}]"
        return _off_step(config, value)
    return None


def _off_step(config: Mapping[str, Any], value: float) -> Optional[str]:
    """What a value off an ``Int``/``Float``'s declared step grid must be instead (``None`` when on it).

    Linear sampling: ``min + k * step``; log sampling: ``min * step ** k`` (KerasTuner's meaning of
    a step on a log scale).
    """
    step, low, high = config.get("step"), config["min_value"], config["max_value"]
    if not step:
        return None
    if config.get("sampling") == "log":
        k = math.log(value / low) / math.log(step)
        grid = "min x step^k"
    else:
        k = (value - low) / step
        grid = "min + k x step"
    if abs(k - round(k)) <= 1e-6:
        return None
    near = (
        [low + math.floor(k) * step, low + (math.floor(k) + 1) * step]
        if config.get("sampling") != "log"
        else [low * step ** math.floor(k), low * step ** math.ceil(k)]
    )
    near = [v for v in near if low <= v <= high] or [low]
    return (
        f"on the declared step grid ({grid}: step {step} from {low} to {high}), e.g. "
        f"{' or '.join(f'{v:g}' for v in near)}"
    )


def make_hyperparameters(
    model_name,
    overrides: Mapping[str, Any],
    input_shape: Sequence[int],
    num_classes: int,
    label: Optional[str] = None,
    defaults: Optional[Mapping[str, Any]] = None,
):
    """``HyperParameters`` with ``overrides`` fixed, after checking names and ranges.

    Args:
        model_name: A registered name, or a builder (then ``label`` names it in messages).
        defaults: Values fixed too where the model declares the name and ``overrides`` does not set
            it (a recipe's ``model_defaults``); names the model does not declare are skipped.

    Raises:
        ValueError: For a name the model does not declare (listing those it does) or a
            value outside the declared range or choices.
    """
    space = hyperparameter_space(model_name, input_shape, num_classes)
    known = {entry.name: entry for entry in space.space}
    model_name = label or model_name
    hp = keras_tuner.HyperParameters()
    chosen = {name: value for name, value in (defaults or {}).items() if name in known and name not in overrides}
    for name, value in {**chosen, **overrides}.items():
        if name not in known:
            raise ValueError(
                f"Model {model_name!r} has no hyperparameter {name!r}; it has: {', '.join(sorted(known))}."
            )
        problem = _check_value(known[name], value)
        if problem:
            raise ValueError(
                f"Hyperparameter {name}={value!r} for model {model_name!r} must be {problem} "
                f"(the space declared for {_shape_text(input_shape)} inputs)."
            )
        if type(known[name]).__name__ == "Int":
            value = int(value)
        hp.Fixed(name, value)
    return hp


def parse_space_value(text: str) -> Any:
    """Parses ``--space key=VALUE``: ``a..b`` narrows a range, a JSON list gives choices, anything else fixes."""
    text = text.strip()
    low, sep, high = text.partition("..")
    if sep:
        bounds = [parse_hp_value(low), parse_hp_value(high)]
        if not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds):
            raise ValueError(f"Range {text!r} must be two numbers, e.g. 32..128.")
        return {"min": bounds[0], "max": bounds[1]}
    if text.startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"Choices {text!r} are not a JSON list ({error}); write e.g. [64,128].") from None
        return values
    return parse_hp_value(text)


def make_search_space(
    model_name: str, overrides: Mapping[str, Any], input_shape: Sequence[int], num_classes: int, batch_size: int
):
    """The ``HyperParameters`` a search starts from: ``overrides`` fix or narrow the model's own space.

    Each override is a value (fixed), a list (choices, each checked against the declared
    range or choices) or a dict ``{"min", "max"[, "step"][, "sampling"]}`` narrowing an
    ``Int``/``Float`` (step and sampling default to the declared ones). Everything not
    overridden keeps the builder's declaration (registered when the tuner first builds).

    Raises:
        ValueError: For unknown names, values outside the declared space, or malformed overrides.
    """
    space = hyperparameter_space(model_name, input_shape, num_classes, batch_size=batch_size)
    known = {entry.name: entry for entry in space.space}
    hp = keras_tuner.HyperParameters()
    for name, spec in overrides.items():
        if name not in known:
            raise ValueError(
                f"Search space of {model_name!r} has no hyperparameter {name!r}; it has: {', '.join(sorted(known))}."
            )
        entry, kind = known[name], type(known[name]).__name__
        config = entry.get_config()
        values = spec if isinstance(spec, list) else [spec["min"], spec["max"]] if isinstance(spec, dict) else [spec]
        if not values:
            raise ValueError(f"--space {name}: give at least one value.")
        if isinstance(spec, dict) and kind not in ("Int", "Float"):
            raise ValueError(
                f"--space {name}: a min..max range needs a numeric hyperparameter; {name} is a "
                f"{kind}, give a list of choices instead."
            )
        for value in values:
            problem = _check_value(entry, value)
            if problem:
                raise ValueError(
                    f"--space {name}={value!r} for model {model_name!r} must be {problem} "
                    f"(the space declared for {_shape_text(input_shape)} inputs)."
                )
        if kind == "Int":
            values = [int(v) for v in values]
        if isinstance(spec, dict):
            unknown = set(spec) - {"min", "max", "step", "sampling"}
            if unknown or values[0] > values[1]:
                raise ValueError(f"--space {name}: expected {{min, max, step, sampling}} with min <= max, got {spec}.")
            step = spec.get("step", config.get("step"))
            sampling = spec.get("sampling", config.get("sampling") or "linear")
            default = config.get("default")
            default = default if default is not None and values[0] <= default <= values[1] else None
            if kind == "Int":
                hp.Int(name, values[0], values[1], step=int(step or 1), sampling=sampling, default=default)
            else:
                hp.Float(name, float(values[0]), float(values[1]), step=step, sampling=sampling, default=default)
        elif len(values) == 1:
            hp.Fixed(name, values[0])
        else:
            hp.Choice(name, values, ordered=kind in ("Int", "Float") or None)
    return hp
