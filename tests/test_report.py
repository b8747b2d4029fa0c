"""The run report end to end, the comparison page, the Chromium render check, and bad input."""

import json
import os
import re

import numpy as np
import pytest

from tfcourse import report as report_cli
from tfcourse.pages import browser, gallery, run_page

needs_chromium = pytest.mark.skipif(
    browser.find_chromium() is None and os.environ.get("CI") != "true",
    reason="headless Chromium is not installed (apt-get install chromium)",
)


def test_training_writes_a_complete_report(cnn_run):
    run_dir, _ = cnn_run
    page = open(os.path.join(run_dir, run_page.REPORT_HTML), encoding="utf-8").read()
    markdown = open(os.path.join(run_dir, run_page.REPORT_MD), encoding="utf-8").read()
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))

    # every figure the Markdown links exists and is embedded in the HTML, which fetches nothing
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(linked) >= 10 and all(os.path.isfile(os.path.join(run_dir, path)) for path in linked)
    assert page.count('src="data:image/png;base64,') == len(linked)
    assert not re.search(r'(src|href)="(?!data:)', page)
    for section in (
        "Discussion",
        "Configuration",
        "Data",
        "Model",
        "Training curves",
        "Test metrics",
        "Confusion matrix",
        "Predictions",
        "Misclassified examples",
        "Explanations",
    ):
        assert f"<h2>{section}</h2>" in page and f"## {section}" in markdown
    assert f"{metrics['test_accuracy']:.2%}" in page
    worst = min(metrics["per_class_accuracy"], key=metrics["per_class_accuracy"].get)
    assert f"worst: {worst}" in markdown  # the automatic discussion names the worst class
    # the report shows the most faithful candidate map, measured on validation images, and says how faithful
    from tfcourse import explanations
    from tfcourse.evaluation import artifacts

    found = re.search(
        r"The explanation shown is (\S+?)(?: on layer (\S+))?, the most faithful of (.+?) on 16 ", markdown
    )
    shown, layer, candidates = found.groups()
    assert shown in run_page.REPORT_CANDIDATES
    # the CAMs are candidates at their default layer and one resolution earlier (the digits cnn has two blocks)
    earlier = explanations.earlier_layer(artifacts.load(run_dir).keras_model())
    assert earlier and f"gradcam ({earlier})" in candidates and f"gradcam++ ({earlier})" in candidates
    assert re.search(r"image by image -?\d\.\d{3} ± \d\.\d{3} below the random map's, lower on \d+ of 16", markdown)
    assert "| random map (baseline) |" in markdown and "the randomisation check" in markdown
    assert f"figures/{shown.replace('+', '_plus')}.png" in markdown
    if shown not in explanations.CAM_METHODS:
        return
    # the discussion states the CAM's silhouette ratio measured on this model, recomputed here:
    # the map of the true class on the first 200 correctly classified test images
    run = artifacts.load(run_dir)
    test = run.test_data()
    saved = np.load(os.path.join(run_dir, "predictions.npz"))
    right = np.flatnonzero(saved["logits"].argmax(axis=1) == test.labels)[:200]
    inputs = run.model_inputs(test.images[right])
    maps = explanations.explain(run.keras_model(), shown, inputs, test.labels[right], layer=layer)
    inside = maps["maps"][test.images[right][..., 0] > 0].mean()
    outside = maps["maps"][test.images[right][..., 0] == 0].mean()
    where = "on the object" if inside / outside > 1 else "mostly on the background"
    on_layer = f" (on layer {layer})" if layer else ""
    assert f"{shown} heat sits {where}{on_layer}: on {len(right)} correctly classified" in markdown
    assert f"is {inside / outside:.2f}x the mean heat on the background" in markdown


def test_the_report_shows_the_most_faithful_map_that_passed_the_randomisation_check():
    def entry(deletion, insertion, passed):
        return {
            "deletion": {"per_image": deletion},
            "insertion": {"per_image": insertion},
            "randomisation": {"passed": passed},
        }

    # per-image margins (insertion - deletion): gradcam 0.2, 0.2, 0.2, 0.2
    measured = {
        "methods": {
            "gradcam": entry([0.3] * 4, [0.5] * 4, True),
            "saliency": entry([0.2] * 4, [0.7] * 4, False),  # margin 0.5, but it failed the check
        }
    }
    assert run_page.choose_faithful(measured) == "gradcam"
    # gradcam++: margins 0.5, 0.3, 0.4, 0.2 -> differences with gradcam 0.3, 0.1, 0.2, 0.0: mean 0.15, std
    # (ddof 1) 0.129, standard error 0.0645 < 0.15: a clear gain, it is chosen
    measured["methods"]["gradcam++"] = entry([0.2, 0.3, 0.2, 0.3], [0.7, 0.6, 0.6, 0.5], True)
    assert run_page.choose_faithful(measured) == "gradcam++"
    # margins 0.5, 0.1, 0.4, 0.0 -> differences 0.3, -0.1, 0.2, -0.2: mean 0.05, std 0.238, standard
    # error 0.119 > 0.05: a better mean but a near tie, the default stays
    measured["methods"]["gradcam++"] = entry([0.2, 0.5, 0.2, 0.5], [0.7, 0.6, 0.6, 0.5], True)
    assert run_page.choose_faithful(measured) == "gradcam"
    for name in measured["methods"]:
        measured["methods"][name]["randomisation"]["passed"] = False
    assert run_page.choose_faithful(measured) == "saliency"  # none passed: the best margin, and the report warns


def test_background_heat_on_a_flatten_head_is_explained():
    from tfcourse.models import build_model
    from tfcourse.tuning import hparams

    def model(head):
        return build_model("cnn", hparams.make_hyperparameters("cnn", {"head": head}, (8, 8, 1), 10), (8, 8, 1), 10)

    assert gallery._has_flatten_head(model("flatten")) and not gallery._has_flatten_head(model("gap"))
    assert not gallery._has_flatten_head(build_model("mlp", input_shape=(8, 8, 1), num_classes=10))
    measured = dict(method="gradcam", examples=150, ratio=0.47, area_inside=0.4, share_inside=0.31, flatten_head=True)
    lines = run_page.silhouette_sentences(measured, {"head": "flatten"})
    assert lines[0].startswith("gradcam heat sits mostly on the background: on 150 correctly classified")
    assert "(pixels > 0, 40% of the image) is 0.47x the mean heat" in lines[0] and "31% of all heat" in lines[0]
    assert "--hp head=gap" in lines[1]
    above = run_page.silhouette_sentences(dict(measured, ratio=1.73), {"head": "flatten"})
    assert len(above) == 1 and "sits on the object" in above[0] and "1.73x" in above[0]
    assert len(run_page.silhouette_sentences(dict(measured, flatten_head=False), {})) == 1


def test_report_on_demand_matches_and_fills_in_old_runs(cnn_run, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(cnn_run[0], old)
    for name in ("report.html", "report.md", "report.txt", "predictions.npz", "figures"):
        target = old / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    metrics = json.loads((old / "metrics.json").read_text())
    for key in ("classification_report", "confusion_matrix", "misclassified"):  # as written before issue 5
        metrics.pop(key)
    (old / "metrics.json").write_text(json.dumps(metrics))

    assert report_cli.main([str(old), "--no-explanations"]) == 0
    again = json.loads((old / "metrics.json").read_text())
    original = json.load(open(os.path.join(cnn_run[0], "metrics.json")))
    assert again["confusion_matrix"] == original["confusion_matrix"]
    assert (old / "report.html").is_file() and (old / "report.txt").is_file() and (old / "predictions.npz").is_file()
    assert "## Explanations" not in (old / "report.md").read_text()


def test_report_of_an_export_uses_the_serving_signature(cnn_run, tmp_path):
    run_dir, export_dir = cnn_run
    out = tmp_path / "export_report"
    assert report_cli.main([export_dir, "--output-dir", str(out), "--no-explanations"]) == 0
    own = json.load(open(os.path.join(run_dir, "metrics.json")))
    text = (out / run_page.REPORT_MD).read_text()
    assert f"test accuracy {own['test_accuracy']:.2%}" in text


def test_compare_puts_runs_side_by_side(cnn_run, mlp_run, tmp_path):
    out = tmp_path / "compare"
    assert report_cli.main(["--compare", cnn_run[0], mlp_run, "--output-dir", str(out)]) == 0
    text = (out / "compare.md").read_text()
    assert "| cnn | cnn |" in text and "| mlp | mlp |" in text and "standard errors" in text
    assert (out / "figures" / "compare.png").is_file()
    assert report_cli.main(["--compare", cnn_run[0], "--output-dir", str(tmp_path / "one")]) == 2
    assert not (tmp_path / "one").exists()


def test_bad_targets_exit_2(tmp_path, capsys):
    assert report_cli.main([str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_check_without_a_browser_is_refused_before_the_report_is_written(mlp_run, tmp_path, monkeypatch, capsys):
    """The missing driver is named before any work: the report is never started."""
    monkeypatch.setenv(browser.ENV_DRIVER, "no-such-chromedriver")
    monkeypatch.setattr(run_page, "write_report", lambda *a, **k: pytest.fail("the report was started"))
    out = tmp_path / "report"
    assert report_cli.main([mlp_run, "--no-explanations", "--output-dir", str(out), "--check"]) == 2
    assert "apt-get install chromium-driver" in capsys.readouterr().err
    assert not out.exists()


@needs_chromium
def test_report_renders_in_headless_chromium_with_a_screenshot(cnn_run, tmp_path):
    import shutil

    run_dir = str(tmp_path / "run")  # the report is rewritten in its folder: a copy (cnn_run is shared)
    shutil.copytree(cnn_run[0], run_dir)
    assert report_cli.main([run_dir, "--no-explanations", "--check", "--screenshot"]) == 0
    shot = os.path.join(run_dir, "report.png")
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size[0] >= 1000 and image.size[1] > 3000  # the whole page, not one screen
        assert np.asarray(image.convert("L")).std() > 10  # not a blank page


PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5"
    "ErkJggg=="
)  # a valid 1x1 PNG


def _page(tmp_path, body):
    page = tmp_path / "page.html"
    page.write_text(f"<html><head><title>t</title><link rel='icon' href='data:,'></head><body>{body}</body></html>")
    return str(page)


@needs_chromium
def test_the_render_check_passes_a_clean_page(tmp_path):
    result = browser.check_page(_page(tmp_path, f'<img src="{PIXEL}" alt="fine">'))
    assert result["ok"] and result["images"] == result["images_loaded"] == 1 and result["errors"] == []


@needs_chromium
def test_the_render_check_fails_on_a_broken_image(tmp_path):
    result = browser.check_page(
        _page(
            tmp_path,
            f'<img src="{PIXEL}" alt="fine"><img src="missing.png" alt="gone">'
            '<img src="data:image/png;base64,AAAA" alt="corrupt">',
        )
    )
    assert not result["ok"] and set(result["broken"]) == {"gone", "corrupt"} and result["images_loaded"] == 1
    assert "image not loaded: gone" in result["problems"]


@needs_chromium
def test_the_render_check_fails_on_a_console_error_and_an_uncaught_exception(tmp_path):
    result = browser.check_page(
        _page(tmp_path, f'<img src="{PIXEL}" alt="fine"><script>console.error("boom")</script>')
    )
    assert not result["ok"] and result["broken"] == [] and any("boom" in error for error in result["errors"])
    result = browser.check_page(_page(tmp_path, f'<img src="{PIXEL}" alt="fine"><script>null.nothing()</script>'))
    assert not result["ok"] and any("TypeError" in error for error in result["errors"])


def test_the_discussion_says_when_plain_edges_do_as_well_as_the_shown_map():
    def area(auc):
        return {"auc": auc, "per_image": [auc] * 4}

    def measured(edge_deletion):
        method = {
            "deletion": area(0.30),
            "insertion": area(0.50),
            "layer": "block1",
            "gain_over_random": {"deletion": {"mean": 0.1, "std": 0.1}, "insertion": {"mean": 0.1, "std": 0.1}},
            "beats_random": {"deletion": 3, "insertion": 3},
            "randomisation": {"passed": True, "layers": ["a", "b", "c"], "rank_correlation": [0.4, 0.3, 0.2]},
        }
        baselines = {
            "random": {"deletion": area(0.40), "insertion": area(0.40)},
            "edges": {"deletion": area(edge_deletion), "insertion": area(0.45)},
        }
        return {"method": "gradcam", "measured": {"images": 4, "methods": {"gradcam": method}, "baselines": baselines}}

    text = " ".join(run_page.faithfulness_sentences(measured(0.35)))
    assert "Sobel edge map" not in text and "passed the randomisation check" in text
    text = " ".join(run_page.faithfulness_sentences(measured(0.28)))
    assert "does as well or better on deletion (0.280 against 0.300)" in text and "insertion (" not in text
