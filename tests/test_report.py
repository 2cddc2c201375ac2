"""The comparative report: one self-contained HTML page per run folder, and its numbers in metrics.json."""

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from headstart import TransferClassifier
from headstart.cli import main
from headstart.datasets import load_digits_images
from headstart.errors import ConfigError, RunFolderError
from headstart.report import build_report, check_curve_sizes

PNG_SRC = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
SECTIONS = ("What was chosen and why", "Candidates", "Backbone and layer ranking", "Test accuracy",
            "Per-class scores and confusion matrix", "Data needed: learning curve", "Training time")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A tiny strategy="auto" run on 10 digits per class, and 20 other digits per class as PNG folders."""
    X, y = load_digits_images()
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.choice(np.flatnonzero(y == c), 10, replace=False) for c in np.unique(y)])
    rest = np.setdiff1d(np.arange(len(y)), train)
    test = np.concatenate([rng.choice(rest[y[rest] == c], 20, replace=False) for c in np.unique(y)])
    root = tmp_path_factory.mktemp("report")
    # One backbone keeps the fit short (the ladder still has a baseline, a probe and fine-tuning rungs); a disk
    # feature cache lets the probe reuse the ranking's features and the CLI test reuse the first report's.
    clf = TransferClassifier(strategy="auto", backbone="mobilenetv2_100", image_size=32, epochs=1, budget="2m",
                             verbose=0, cache_dir=str(root / "features")).fit(X[train], y[train])
    run = clf.save(root / "run")
    data = root / "test_digits"
    for i in test:
        (data / y[i]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(X[i]).save(data / y[i] / f"{i}.png")
    return run, data


@pytest.fixture(scope="module")
def report_page(digits_run):
    run, data = digits_run
    path = build_report(run, data)
    return path, path.read_text(encoding="utf-8"), json.loads((run / "metrics.json").read_text())


def test_report_has_every_section_and_four_inline_png_plots(report_page, digits_run):
    path, html, _ = report_page
    run, _ = digits_run
    assert path == run / "report.html"
    for heading in SECTIONS:
        assert f">{heading}</h2>" in html, heading
    assert html.count("<img ") == 4
    assert html.count('<img alt="') == 4 and len(PNG_SRC.findall(html)) == 4
    assert "http://" not in html and "https://" not in html  # self-contained: nothing fetched
    plan = json.loads((run / "plan.json").read_text())
    for candidate in plan["candidates"]:
        assert candidate["name"] in html and candidate["status"] in html
    assert "split 50/50" in html and "stratified" in html
    from headstart.report.plan import verdict_headline

    assert f'<p class="verdict {verdict_headline(plan)[0]}"><strong>{verdict_headline(plan)[1]}</strong>' in html
    if plan["default"]:  # the rule in force, not "the best won"
        assert f"the ladder's default at this data size, <code>{plan['default']}</code>, is kept unless another" in html
    else:  # the default rung was skipped for the budget
        assert "the cheapest transfer candidate within one paired standard error of the best is kept" in html
    scored = sum(c["status"] == "scored" for c in plan["candidates"])  # tiny data: the rung at LogME's depth is skipped
    assert scored < len(plan["candidates"])
    assert (f"{scored} candidates ({len(plan['candidates']) - scored} more skipped, each with its reason under "
            f"Candidates), each scored on held-out data it never saw") in html
    assert (f"(stratified 3-fold cross-validation: each of the {plan['held_out_predictions']} labeled examples "
            f"held out once, by a fit trained on the other 2 folds)") in html
    assert "20 per class skipped: larger than the smallest class of the training half (10)" in html


def test_report_numbers_go_into_metrics_json_next_to_the_fit_summary(report_page, digits_run):
    _, _, metrics = report_page
    assert metrics["strategy"] == "auto" and "fit_seconds" in metrics  # the fit's own numbers are kept
    report = metrics["report"]
    curve = report["learning_curve"]
    assert curve["sizes_used"] == [1, 2, 5, 10] and curve["split"]["n_train"] == curve["split"]["n_test"] == 100
    kinds = {c["kind"]: c for c in curve["curves"]}
    assert set(kinds) == {"transfer", "baseline"}
    for c in kinds.values():
        assert [p["per_class"] for p in c["points"]] == [1, 2, 5, 10]
        for p in c["points"]:
            assert len(p["scores"]) == 3 and 0 <= p["mean"] <= 1 and p["std"] >= 0 and p["n_train"] == 10 * p["per_class"]
    test = report["test"]
    assert test["n_examples"] == 200 and test["low"] <= test["accuracy"] <= test["high"]
    assert len(test["per_class"]) == 10 and np.sum(test["confusion_matrix"]["matrix"]) == 200
    rows = report["comparison"]["rows"]
    assert [r["kind"] for r in rows] == ["chosen", "chosen", "transfer", "baseline"]
    assert sorted(report["figures"]) == ["candidates", "confusion", "learning_curve", "ranking"]
    assert {c["name"] for c in report["plan"]["candidates"]} == {c["name"] for c in
                                                                 json.loads((digits_run[0] / "plan.json").read_text())["candidates"]}


def test_report_without_data_shows_the_plan_only(digits_run, tmp_path):
    run, _ = digits_run
    path = build_report(run, out=tmp_path / "plan_only.html")
    html = path.read_text(encoding="utf-8")
    assert "No test data was given" in html and html.count("<img ") == 2  # candidates and ranking
    assert json.loads((run / "metrics.json").read_text())["report"]["test"] is None


def test_report_refuses_bad_curve_sizes():
    assert check_curve_sizes("5, 1,2,2") == [1, 2, 5]
    with pytest.raises(ConfigError, match="positive whole numbers"):
        check_curve_sizes("1,0")
    with pytest.raises(ConfigError, match="positive whole numbers"):
        check_curve_sizes("1,two")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; "
                                              "`make setup` installs it when run as root)")
def test_report_renders_in_headless_chromium(report_page, tmp_path):
    path, html, _ = report_page
    shot = tmp_path / "shot.png"
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,3000", path.absolute().as_uri()],
                   check=True, capture_output=True, timeout=120)
    assert shot.is_file()
    with Image.open(shot) as image:
        assert image.size == (1200, 3000)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page

    dom = subprocess.run([*common, "--dump-dom", path.absolute().as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    assert ">What was chosen and why</h2>" in dom
    payloads = PNG_SRC.findall(dom)
    assert len(payloads) == dom.count("<img ") == 4
    for payload in payloads:  # every inline image is a whole, decodable PNG
        with Image.open(io.BytesIO(base64.b64decode(payload, validate=True))) as image:
            assert image.format == "PNG"
            image.load()
            assert image.width > 200 and image.height > 100


def test_report_cli_writes_the_page(digits_run, tmp_path, capsys):
    run, data = digits_run
    out = tmp_path / "cli.html"
    assert main(["report", str(run), str(data), "--out", str(out), "--curve-sizes", "1,5"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "metrics.json" in printed
    assert out.read_text(encoding="utf-8").count("<img ") == 4
    assert json.loads((run / "metrics.json").read_text())["report"]["learning_curve"]["sizes_used"] == [1, 5]


def test_report_cli_on_a_missing_run_folder_exits_2_with_the_reason(tmp_path, capsys):
    missing = tmp_path / "no_such_run"
    assert main(["report", str(missing)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("headstart: error: run folder") and "does not exist" in error and str(missing) in error
    with pytest.raises(RunFolderError, match="does not exist"):
        build_report(missing)


def test_report_cli_refuses_bad_curve_sizes(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--curve-sizes", "0,3"]) == 2
    assert "positive whole numbers" in capsys.readouterr().err


def test_report_on_a_non_auto_run_shows_its_strategy_and_validation_accuracy(tmp_path):
    X, y = load_digits_images()
    features = X.reshape(len(X), -1).astype(np.float32) / 255.0
    clf = TransferClassifier(backbone="precomputed", strategy="linear_probe", verbose=0).fit(features[:300], y[:300])
    run = clf.save(tmp_path / "run")
    path = build_report(run, (features[300:500], y[300:500]), curve_sizes=(1, 3))
    html = path.read_text(encoding="utf-8")
    assert "<strong>linear_probe</strong> on precomputed" in html and "validation accuracy" in html
    assert ">Candidates</h2>" not in html and "No ranking" in html
    assert html.count("<img ") == len(PNG_SRC.findall(html)) == 2  # confusion matrix and learning curve
    report = json.loads((run / "metrics.json").read_text())["report"]
    assert [c["kind"] for c in report["learning_curve"]["curves"]] == ["transfer"]  # no baseline for features
    assert "no baseline curve" in report["learning_curve"]["notes"][-1]
    assert report["comparison"]["difference"] is None


def _shifted_features(seed: int = 0, n_per_class: int = 60):
    """Two classes of 6-d features; the target is the source shifted along a direction the labels ignore."""
    rng = np.random.default_rng(seed)
    y = np.repeat(["neg", "pos"], n_per_class)
    centre = np.where(y == "pos", 2.0, -2.0)[:, None] * np.eye(6)[0]
    source = centre + 0.7 * rng.normal(size=(len(y), 6))
    target = centre + 0.7 * rng.normal(size=(len(y), 6)) + 1.5 * np.eye(6)[3]
    return source, y, target


def test_report_compares_source_only_and_adapted_on_target_data(tmp_path):
    """An adapted run that kept its source-only reference: the page scores both on the same labeled target
    data with a paired interval, draws the before/after view, and metrics.json holds the same numbers."""
    source, y, target = _shifted_features()
    common = dict(strategy="linear_probe", backbone="precomputed", verbose=0, epochs=5)
    unlabeled, test = np.arange(0, len(y), 2), np.arange(1, len(y), 2)  # both halves hold both classes
    adapted = TransferClassifier(adapt="coral", **common).fit(source, y, X_target=target[unlabeled])
    adapted.source_only_ = TransferClassifier(**common).fit(source, y)  # what adapt="auto" keeps when adapting wins
    run = adapted.save(tmp_path / "run")
    assert (run / "source_only" / "config.json").is_file()

    path = build_report(run, (target[test], y[test]), curve_sizes=(1, 2))
    html = path.read_text(encoding="utf-8")
    numbers = json.loads((run / "metrics.json").read_text())["report"]["adaptation"]
    expected = adapted.source_only_.score(target[test], y[test])
    assert numbers["test"]["accuracy"] == pytest.approx(expected)
    assert numbers["chosen"] == "coral" and numbers["loss_terms"] == ["coral (weight 1)"]
    assert ">Domain adaptation: source-only against adapted</h2>" in html
    assert numbers["test"]["text"] in html and numbers["test"]["difference_text"] in html
    assert 'alt="source and target features before and after adaptation"' in html
    assert "_view" not in numbers  # the coordinates stay in the fit summary only
    assert numbers["domain_accuracy"]["before"] > 0.8


def test_report_of_adapt_auto_lists_every_candidate_and_keeps_source_only_only_when_adapting_won(tmp_path):
    from headstart.adapt.select import CANDIDATES

    source, y, target = _shifted_features(seed=1)
    clf = TransferClassifier(strategy="linear_probe", backbone="precomputed", adapt="auto", epochs=3,
                             verbose=0).fit(source, y, X_target=target)
    run = clf.save(tmp_path / "run")
    assert (run / "source_only").is_dir() == (clf.adaptation_["chosen"] != "source_only")
    html = build_report(run).read_text(encoding="utf-8")
    for name in CANDIDATES:
        assert f"<td>{name}" in html
    assert "information maximization on the unlabeled target inputs" in html
    assert "Pass labeled target data to this report" in html
    # the run's fit time is the whole choice, and the kept candidate's own fit is shown beside it
    assert f"the run's fit time (all {len(clf.adaptation_['candidates'])} adaptation candidates)" in html
    assert f"the kept adaptation candidate's own fit ({clf.adaptation_['chosen']})" in html


def test_report_says_when_dev_was_too_thin_to_guard_the_choice(tmp_path, monkeypatch):
    from headstart.adapt import select

    monkeypatch.setattr(select, "DEV_MIN_EFFECTIVE_SHARE", 1.01)  # no weights rest on 101% of the rows
    source, y, target = _shifted_features(seed=1)
    clf = TransferClassifier(strategy="linear_probe", backbone="precomputed", adapt="auto", epochs=3,
                             verbose=0).fit(source, y, X_target=target)
    gate = clf.adaptation_["dev_gate"]
    assert clf.adaptation_["chosen"] != "source_only" and gate["trusted"] is False and gate["kept"] is True
    html = build_report(clf.save(tmp_path / "run")).read_text(encoding="utf-8")
    assert (f"not used: DEV's importance weights rest on {gate['effective_rows']} of {gate['rows']} source "
            f"validation rows") in html
    assert f"information maximization chose {clf.adaptation_['chosen']} alone" in html


def _plan_candidates(baseline: float, probe: float, lp_ft: float):
    return [{"name": "baseline:b", "kind": "baseline", "strategy": "b", "status": "scored", "mean": baseline},
            {"name": "linear_probe@m", "kind": "transfer", "strategy": "linear_probe", "status": "scored", "mean": probe},
            {"name": "lp_ft@m", "kind": "transfer", "strategy": "lp_ft", "status": "scored", "mean": lp_ft}]


def test_plain_verdict_says_a_tie_says_nothing_and_names_the_kept_default():
    from headstart.report.plan import plain_verdict, verdict_headline

    plan = {"winner": "lp_ft@m", "baseline": "baseline:b", "negative_transfer": False,
            "verdict": "no difference shown: the no-transfer baseline baseline:b ties ..."}
    text = plain_verdict(plan, _plan_candidates(0.583, 0.583, 0.5))
    assert text.startswith("The planner kept lp_ft@m (a pretrained model, lp_ft): held-out accuracy 0.500.")
    assert "linear_probe@m scored higher (0.583), but lp_ft@m is the option that did best in our benchmarks" in text
    assert verdict_headline(plan) == ("neutral", "No difference shown.")


def test_plain_verdict_names_the_kept_default_when_it_is_not_the_best():
    from headstart.report.plan import plain_verdict, verdict_headline

    plan = {"winner": "lp_ft@m", "baseline": "baseline:b", "negative_transfer": False, "verdict": "transfer helped: ..."}
    text = plain_verdict(plan, _plan_candidates(0.6, 0.75, 0.7))
    assert text.startswith("The planner kept lp_ft@m (a pretrained model, lp_ft): held-out accuracy 0.700. A simple "
                           "model trained from scratch on the raw inputs (b) scored 0.600; the pretrained model scored "
                           "10.0 percentage points higher.")
    assert text.endswith("linear_probe@m scored higher (0.750), but lp_ft@m is the option that did best in our "
                         "benchmarks at this data size, and it is kept unless another beats it clearly (the 95% "
                         "interval of the paired difference above zero), which the held-out examples did not show.")
    assert verdict_headline(plan) == ("positive", "Transfer helped.")
    assert verdict_headline({**plan, "negative_transfer": True}) == ("negative", "Negative transfer.")


def test_report_says_a_winner_kept_as_scored_was_not_refit(digits_run, tmp_path):
    """From 30 per class the planner scores on the fit's own validation split and keeps a fine-tuned winner."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run[0], run)
    plan = json.loads((run / "plan.json").read_text())
    plan.update(splits=1, split_sizes=[80, 20], split_kind="the fit's own validation split", winner_refit=False)
    (run / "plan.json").write_text(json.dumps(plan))
    html = build_report(run, out=tmp_path / "kept.html").read_text(encoding="utf-8")
    assert ("each trained on 80 examples and scored on the other 20, the validation split that any fit of this "
            "data holds out to choose its epoch or C") in html
    assert "the winner is kept as scored: that fit already is the fit of its strategy on all" in html
    assert "refit on all" not in html and "and the final refit" not in html
