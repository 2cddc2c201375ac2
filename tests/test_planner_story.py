"""One story about strategy="auto": the planner's verdict, each candidate's reason, the log, the report and
the demo name the same chosen model, show every candidate's score with its time, and say what a
slower choice bought over a cheaper one the held-out examples cannot tell from it (issue 26, items 4, 5
and the demo)."""

import base64
import dataclasses
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from headstart import TransferClassifier
from headstart.planner import Candidate, choose_winner, explain
from headstart.planner.explain import seconds_text

N = 31  # held-out predictions in the issue's example


def _scored(name, kind, correct, seconds, default=False):
    return Candidate(name, kind, kind if kind == "baseline" else name.split("@")[0], "m", scores=[float(np.mean(correct))],
                     correct=list(correct), seconds=seconds, status="scored", default=default)


def _issue_example():
    """Two candidates score 1.000 (a 2.4 s baseline and a 20 s probe); the default rung, 4 min, scores
    0.935 and is kept, since neither leads it with the 95% interval of the paired difference above zero."""
    return [_scored("baseline:pixels", "baseline", [1] * N, 2.4),
            _scored("linear_probe@m", "transfer", [1] * N, 20.0),
            _scored("lp_ft@m", "transfer", [1] * 30 + [0], 390.0),
            _scored("contrastive@m", "transfer", [1] * 29 + [0, 0], 250.0, default=True)]


def _story(scored, held_out=N):
    decision = choose_winner(scored, held_out)
    verdict, reasons = explain(decision, scored)
    return decision, verdict, reasons


def _plan(scored, held_out=N):
    """What plan_ records of a decision (the fields the report reads), as planner.run builds it."""
    decision, verdict, reasons = _story(scored, held_out)
    return {"winner": decision.winner.name, "baseline": decision.baseline.name if decision.baseline else None,
            "rule": decision.rule, "negative_transfer": decision.negative_transfer, "verdict": verdict,
            "held_out_predictions": held_out, "defaults": [c.name for c in scored if c.default],
            "candidates": [{**dataclasses.asdict(c), "mean": c.mean, "std": c.std, "reason": reasons[c.name]}
                           for c in scored]}


# --------------------------------------------------------------------------- the planner's words


def test_explain_reasons_never_say_lost_when_a_candidate_scored_as_high_or_higher():
    scored = _issue_example()
    decision, _, reasons = _story(scored)
    assert decision.winner.name == "contrastive@m"
    for c in scored:
        if c is decision.winner:
            continue
        verb = "lost: " if c.mean < decision.winner.mean else "not chosen: "
        assert reasons[c.name].startswith(verb), (c.name, reasons[c.name])
    assert ("the baseline replaces the kept transfer model only when it beats every transfer candidate and leads the "
            "kept one with the 95% interval of the paired difference above zero") in reasons["baseline:pixels"]
    assert "the default is kept unless another beats it" in reasons["linear_probe@m"]


def test_explain_reasons_show_every_candidate_score_and_time():
    scored = _issue_example()
    _, _, reasons = _story(scored)
    for c in scored:
        assert f"{c.mean:.3f} [" in reasons[c.name] and f"in {seconds_text(c.seconds)}" in reasons[c.name], c.name


def test_explain_verdict_names_the_chosen_model_not_the_best_scorer():
    # the probe leads the default by +12.5 points, interval [-3.1, +27.0]: the default is kept
    probe = _scored("linear_probe@m", "transfer", [1] * 7 + [0] * 2 + [1] * 22 + [0] * 9, 2)
    lp_ft = _scored("lp_ft@m", "transfer", [0] * 7 + [1] * 2 + [1] * 22 + [0] * 9, 60, default=True)
    baseline = _scored("baseline:b", "baseline", [0] * 20 + [1] * 20, 0.1)
    decision, verdict, reasons = _story([baseline, probe, lp_ft], 40)
    assert decision.winner is lp_ft
    assert not verdict.startswith("transfer helped: linear_probe@m")
    assert "keeping lp_ft@m (0.600 [0.446, 0.737] in 60.0 s), the ladder's default at this data size, kept unless " \
           "clearly beaten: linear_probe@m (0.725 [0.572, 0.839] in 2.0 s) leads it by +12.5 points" in verdict
    assert reasons["linear_probe@m"].startswith("not chosen: best held-out accuracy 0.725")


def test_explain_verdict_says_the_extra_time_bought_nothing_over_an_indistinguishable_cheaper_candidate():
    _, verdict, _ = _story(_issue_example())
    assert ("contrastive@m took 104× the time of baseline:pixels (4.2 min against 2.4 s) for -6.5 points, 95% "
            "interval [-17.8, +5.6]: no difference these 31 held-out examples can show, so the extra time bought "
            "nothing measurable") in verdict


def test_explain_verdict_says_what_the_extra_time_bought_when_the_chosen_is_clearly_better():
    probe = _scored("linear_probe@m", "transfer", [1, 0] * 20, 2)
    finetune = _scored("finetune@m", "transfer", [1] * 40, 60)
    _, verdict, _ = _story([probe, finetune], 40)
    assert verdict.startswith("no baseline exists for this modality, so transfer was not compared; keeping finetune@m")
    assert "finetune@m took 30× the time of linear_probe@m (60.0 s against 2.0 s) and that bought +50.0 points" in verdict


# --------------------------------------------------------------------------- the report tells the same story


def test_report_plain_verdict_names_the_chosen_model_with_score_time_and_trade_off():
    from headstart.report.plan import summarize_plan

    summary, _ = summarize_plan(_plan(_issue_example()))
    text = summary["plain_verdict"]
    assert text.startswith("The planner kept contrastive@m (a pretrained model, contrastive): held-out accuracy "
                           "0.935 in 4.2 min.")
    assert "linear_probe@m scored higher (1.000 in 20.0 s), but contrastive@m is the option that did best" in text
    assert "the held-out examples cannot tell the two apart (the pretrained model: -6.5 points" in text
    assert text.endswith("It took 104× the time of baseline:pixels (4.2 min against 2.4 s): the extra time bought no "
                         "accuracy the held-out examples can show.")
    assert summary["winner_score"] == "0.935 [0.793, 0.982]" and summary["winner_seconds"] == 250.0
    assert summary["chosen_vs_baseline"]["text"] == "-6.5 points [-17.8, +5.6]"
    assert summary["headline"] == ("neutral", "No difference shown.")


def _halves_report(n_labeled=151):
    """A report's numbers before :func:`comparison`: 100 test examples, the scoring half the odd ones;
    the chosen model (trained on the run's 151) right on 48 of 50, the probe refit on the training half
    right on 45, the baseline refit on it right on 48."""
    y_true = np.array(["a", "b"] * 50, dtype=object)
    half = np.arange(1, 100, 2)
    encoded = (y_true[half] == "b").astype(int)

    def refit(name, wrong):
        predicted = encoded.copy()
        predicted[:wrong] = 1 - predicted[:wrong]
        return {"name": name, "n_train": 50, "accuracy": float(np.mean(predicted == encoded)), "low": 0.0,
                "high": 1.0, "text": "t", "C_chosen": "C=1", "_predicted": predicted}

    chosen = y_true.copy()
    chosen[half[:2]] = np.where(chosen[half[:2]] == "a", "b", "a")
    return {"n_labeled": n_labeled, "strategy": "auto", "backbone": "m",
            "plan": {"winner": "lp_ft@m", "winner_kind": "transfer",
                     "candidates": [{"name": "lp_ft@m", "strategy": "lp_ft", "chosen": True}]},
            "test": {"n_examples": 100, "accuracy": 0.98, "low": 0.9, "high": 1.0, "text": "0.980",
                     "_y_true": y_true, "_predicted": chosen},
            "learning_curve": {"_test_idx": half, "full_half": {"transfer": refit("linear_probe@m", 5),
                                                                "baseline": refit("baseline:pixels", 2)}}}


def test_report_headline_gain_compares_models_trained_on_the_same_rows():
    from headstart.report.curve import comparison

    result = comparison(_halves_report())
    difference = result["difference"]
    assert difference["n_train"] == 50 and difference["n"] == 50
    assert difference["transfer_minus_baseline"] == pytest.approx(-0.06)  # 0.90 against 0.96, both on the half
    assert difference["meaning"] in ("the data cannot tell them apart", "the baseline is better")
    assert "chosen_minus_baseline" not in difference
    assert difference["transfer_is"].startswith("a linear probe on the chosen model's backbone (the chosen lp_ft")
    trained = {row["model"]: row["trained_on"] for row in result["rows"]}
    assert trained["chosen: lp_ft@m"] == "the run's 151 labeled examples"
    assert trained["baseline:pixels (refit for this report)"].startswith("the training half (50")


# --------------------------------------------------------------------------- a real fit: the log, plan_, the report


def test_planner_story_log_fit_summary_and_report_name_the_same_chosen_model(tmp_path, capsys):
    from headstart.cli.format import fit_summary_lines
    from headstart.report import build_report

    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 10)
    X = rng.standard_normal((len(y), 8)).astype(np.float32)
    X[y == "a", 0] += 3
    X[y == "b", 1] += 3
    clf = TransferClassifier(strategy="auto", backbone="precomputed", epochs=2, verbose=1).fit(X, y)
    log = capsys.readouterr().out
    winner = clf.plan_["winner"]
    assert f"keeping {winner} (" in clf.plan_["verdict"] and clf.plan_["verdict"] in log
    assert f"auto: refitting {winner} " in log or f"auto: keeping {winner} as scored" in log
    for c in (c for c in clf.plan_["candidates"] if c["status"] == "scored"):
        assert re.search(rf"auto: {re.escape(c['name'])} scored .*\(\d+\.\d s\)", log), c["name"]
        assert seconds_text(c["seconds"]) in c["reason"]
    assert any(f"chosen:              {winner} — " in line for line in fit_summary_lines(clf, tmp_path))
    html = build_report(clf.save(tmp_path / "run")).read_text(encoding="utf-8")
    assert f"The planner kept {winner} (" in html and f"<strong>{winner}</strong>" in html


# --------------------------------------------------------------------------- the demo


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """`headstart demo` on 4 digits of each of 5 classes, a 15 s budget: its printout and its results."""
    import contextlib

    from headstart import demo
    from headstart.datasets import load_digits_images

    images, labels = load_digits_images()
    keep = np.isin(labels, ["0", "1", "2", "3", "4"])
    spec = {"name": "digits", "description": "five digit classes", "X": images[keep], "y": labels[keep],
            "per_class": 4, "n_test": 40, "curve_sizes": (1, 2),
            "params": {"random_state": 0, "epochs": 1, "budget": "15s", "backbone": "mobilenetv2_100", "image_size": 32}}
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    original = demo._datasets
    demo._datasets = lambda quick: [spec]
    try:
        with contextlib.redirect_stdout(printed):
            results = demo.run_demo(out, quick=True)
    finally:
        demo._datasets = original
    return out, printed.getvalue(), results


def test_demo_shows_the_plan_the_choice_the_baseline_check_and_where_the_report_is(tiny_demo):
    out, printed, results = tiny_demo
    record = results["datasets"]["digits"]
    assert "| candidate" in printed and "held-out accuracy [95% interval] |" in printed and " time |" in printed
    assert f"{record['chosen']} (chosen)" in printed
    assert f"chosen: {record['chosen']} — won: " in printed
    assert "baseline check: " in printed and f"The planner kept {record['chosen']} (" in printed
    assert record["report"] == str(out / "digits" / "report.html") and f"report: {record['report']}" in printed
    assert json.loads((out / "demo_results.json").read_text())["datasets"]["digits"]["chosen"] == record["chosen"]
    html = (out / "digits" / "report.html").read_text(encoding="utf-8")
    assert f"<strong>{record['chosen']}</strong>" in html and 'id="like-for-like"' in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PNG_SRC = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; "
                                              "`make setup` installs it when run as root)")
def test_demo_report_renders_in_headless_chromium(tiny_demo, tmp_path):
    out, _, results = tiny_demo
    page = out / "digits" / "report.html"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", page.absolute().as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    for heading in ("What was chosen and why", "Candidates", "Test accuracy", "Data needed: learning curve"):
        assert f">{heading}</h2>" in dom, heading
    assert f"The planner kept {results['datasets']['digits']['chosen']} (" in dom and "Like for like" in dom
    payloads = PNG_SRC.findall(dom)
    assert len(payloads) == dom.count("<img ") >= 3
    for payload in payloads:  # every inline image is a whole, decodable PNG
        with Image.open(io.BytesIO(base64.b64decode(payload, validate=True))) as image:
            assert image.format == "PNG"
            image.load()
