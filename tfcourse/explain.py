"""``python -m tfcourse.explain RUN``: heatmaps (.npz) and figures for test examples of a run or an export."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from tfcourse import cli, machine, rundir
from tfcourse.explanations import CAM_METHODS, GRADIENT_METHODS, METHODS, check_method, method_applies

MAP_METHODS = CAM_METHODS + GRADIENT_METHODS  # the methods that give a map of the input (what --evaluate measures)


def parse_units(text: str) -> List[int]:
    """``--units 0,1,2``: filter or class indices.

    Raises:
        ValueError: Naming the entry that is not a non-negative integer.
    """
    units = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ValueError(
                f"--units {text!r}: {part!r} is not a filter or class index; give non-negative "
                "integers separated by commas, e.g. --units 0,1,2."
            )
        units.append(int(part))
    return units


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.explain",
        description="Explain a trained model: heatmaps (.npz) and figures for one test example per class.",
    )
    parser.add_argument("target", help="a run folder (model.keras + config.json) or a SavedModel export folder")
    parser.add_argument(
        "--method",
        action="append",
        choices=METHODS + ("all",),
        default=None,
        help="repeatable; default gradcam. 'all' = every method that applies to the model",
    )
    parser.add_argument(
        "--layer",
        default=None,
        help="feature layer for CAM methods (default: the last convolutional block), the layer "
        "whose filters activation_max visualises (default: the logits, one image per class), "
        "or the MultiHeadAttention layer attention draws (default: the last)",
    )
    parser.add_argument("--examples-per-class", type=int, default=1)
    parser.add_argument("--units", default=None, help="activation_max: comma-separated filter/class indices")
    parser.add_argument(
        "--start",
        choices=("noise", "image"),
        default="noise",
        help="activation_max: start from random noise (default) or from the test examples",
    )
    parser.add_argument("--steps", type=int, default=100, help="activation_max: gradient-ascent steps")
    parser.add_argument("--smooth-samples", type=int, default=20, help="SmoothGrad's noisy copies")
    parser.add_argument("--head", type=int, default=0, help="attention: the head whose attention matrix is drawn")
    parser.add_argument(
        "--rollout",
        action="store_true",
        help="attention: map the attention rollout through all layers instead of one layer",
    )
    parser.add_argument(
        "--keras-model",
        default=None,
        help="for an export: the .keras model to take gradients of (default: the run folder recorded in the export)",
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="measure how faithful each method is (deletion and insertion AUCs against a random and an edge "
        "map, the randomisation check) on validation images; default methods: every map method that applies",
    )
    parser.add_argument(
        "--evaluate-images", type=int, default=32, help="--evaluate: validation images measured (seeded sample)"
    )
    parser.add_argument("--output-dir", default=None, help="default: <run folder>/explain")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with cli.sigterm_unwinds():
            written = _explain_command(args)
    except ValueError as error:
        print(f"tfcourse.explain: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an output folder that cannot be written (read-only, full disk)
        line = cli.write_fault(error) or (
            f"cannot write {error.filename or 'the output'}: {error.strerror}; pass another --output-dir."
        )
        print(f"tfcourse.explain: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        cli.interrupted_exit(parser, error)
    for path in written:
        print(path)
    return 0


def _explain_command(args) -> List[str]:
    """The explanations ``args`` ask for, written; returns the paths."""
    machine.load_tensorflow()
    from tfcourse.evaluation import artifacts  # TensorFlow loads here, after the flags are read
    from tfcourse.pages import gallery

    run = artifacts.load(args.target, keras_model=args.keras_model)
    model = run.keras_model(required_for="explanations need gradients")
    methods = args.method or (["all"] if args.evaluate else ["gradcam"])
    if "all" in methods:  # every method that applies (with --evaluate: every map method)
        methods = [m for m in (MAP_METHODS if args.evaluate else METHODS) if method_applies(model, m)]
    for method in methods:
        check_method(model, method, args.layer if method in CAM_METHODS + ("activation_max", "attention") else None)
    if args.examples_per_class < 1 or args.steps < 1 or args.smooth_samples < 1 or args.evaluate_images < 2:
        raise ValueError(
            "--examples-per-class, --steps and --smooth-samples must be at least 1, --evaluate-images at least 2."
        )
    if args.evaluate:
        unmeasurable = [m for m in methods if m not in MAP_METHODS]
        if unmeasurable:
            raise ValueError(
                f"--evaluate measures maps of the input; {', '.join(unmeasurable)} draws none: choose from "
                f"{', '.join(MAP_METHODS)}."
            )
    units = parse_units(args.units) if args.units else None
    out_dir = args.output_dir or os.path.join(run.run_dir or ".", "explain")
    rundir.check_writable_folder(out_dir, "--output-dir")
    if args.evaluate:
        from tfcourse.pages import faithfulness_page

        paths = faithfulness_page.write_faithfulness(
            run,
            model,
            methods,
            out_dir,
            count=args.evaluate_images,
            layer=args.layer,
            seed=args.seed,
            progress=lambda text: print(f"tfcourse: {text}", flush=True),
        )
        print(open(paths["markdown"], encoding="utf-8").read())
        return list(paths.values())
    written = gallery.write_explanations(
        run,
        model,
        methods,
        out_dir,
        layer=args.layer,
        per_class=args.examples_per_class,
        units=units,
        start=args.start,
        steps=args.steps,
        smooth_samples=args.smooth_samples,
        seed=args.seed,
        progress=True,
        head=args.head,
        rollout=args.rollout,
    )
    return written


if __name__ == "__main__":
    sys.exit(main())
