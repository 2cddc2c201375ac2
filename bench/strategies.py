"""The planner against every fixed strategy, on real small data: ``python -m bench.strategies``.

Tasks (few labeled examples per class; a fixed, disjoint test set):

* ``digits@10``: scikit-learn's digits, 10 per class; test = 600 of the rest. Raw pixels are
  known to beat ImageNet features here, so the planner should report negative transfer.
* ``fashion@10`` / ``fashion@100``: Fashion-MNIST train, 10 / 100 per class; test = 2,000 of t10k.
* ``vader@8`` / ``vader@64``: VADER movie snippets, 8 / 64 per class; test = 2,000 others.

Methods: the no-transfer baseline (pixels or TF-IDF + logistic regression), linear_probe,
finetune, lp_ft and scratch on the zoo default of the modality (images at ``--image-size``), and
``auto`` (the planner, all zoo backbones of the modality). Each task over ``--seeds`` (the labeled
draw and the training seed change together). The oracle is the best fixed method by mean test
accuracy; the planner's gap to it and its wall time ratio are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from headstart import TransferClassifier
from headstart.baselines import baseline_for

from . import datasets
from .report import finish, load_saved, parse_suite_args, record, save_results

ROOT = Path(__file__).resolve().parent.parent
FIXED = ("baseline", "linear_probe", "finetune", "lp_ft", "scratch")


def load_task(name: str, seed: int, smoke: bool):
    kind, per_class = name.split("@")
    per_class = int(per_class)
    rng = np.random.default_rng(1000 + seed)
    if kind == "digits":
        X, y = datasets.digits()
        train = datasets.few_shot(y, per_class, seed)
        rest = np.setdiff1d(np.arange(len(y)), train)
        test = rng.choice(rest, min(len(rest), 60 if smoke else 600), replace=False)
        return X[train], y[train].astype(str), X[test], y[test].astype(str)
    if kind == "fashion":
        X, y = datasets.fashion_mnist("train")
        Xt, yt = datasets.fashion_mnist("test")
        train = datasets.few_shot(y, per_class, seed)
        test = rng.choice(len(yt), 100 if smoke else 2000, replace=False)
        return X[train], y[train].astype(str), Xt[test], yt[test].astype(str)
    texts, y = datasets.vader("movie")
    train = datasets.few_shot(y, per_class, seed)
    rest = np.setdiff1d(np.arange(len(y)), train)
    test = rng.choice(rest, 100 if smoke else 2000, replace=False)
    pick = lambda idx: [texts[i] for i in idx]
    return pick(train), y[train].astype(str), pick(test), y[test].astype(str)


def run_method(method: str, X, y, Xt, yt, seed: int, args, modality: str | None = None) -> dict:
    started = time.perf_counter()
    common = dict(random_state=seed, verbose=0, image_size=args.image_size, epochs=args.epochs,
                  cache_dir=args.cache_dir)
    if method == "baseline":
        modality = modality or ("text" if isinstance(X, list) else "image")
        model = baseline_for(modality)()
        classes, encoded = np.unique(y, return_inverse=True)
        from headstart.data import stratified_split

        tr, va = stratified_split(encoded, 0.2, seed)
        items = list(X)
        model.fit([items[i] for i in tr], encoded[tr], [items[i] for i in va], encoded[va], len(classes))
        fitted = time.perf_counter()
        predictions = classes[model.predict_logits(list(Xt)).argmax(1)]
        extra = {}
    else:
        options = {"strategy": method} if method != "auto" else {"strategy": "auto", "budget": args.budget}
        clf = TransferClassifier(**common, **options).fit(X, y)
        fitted = time.perf_counter()
        predictions = clf.predict(Xt)
        extra = {}
        if method == "auto":  # the held-out evidence too, so other selection rules can be replayed on it
            keep = ("name", "status", "default", "mean", "seconds", "correct", "log_loss")
            extra = {"chosen": clf.plan_["winner"], "negative_transfer": clf.plan_["negative_transfer"],
                     "candidates": [{k: c[k] for k in keep} for c in clf.plan_["candidates"]]}
    # "seconds" is the fit alone: predicting the 2000 test inputs costs the same after any fit (7 s of
    # MiniLM on VADER), and counted in it narrowed every planner/fixed ratio (docs/benchmarks.md)
    return {"accuracy": float((np.asarray(predictions) == np.asarray(yt)).mean()),
            "seconds": fitted - started, "predict_seconds": time.perf_counter() - fitted, **extra}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="digits@10,fashion@10,vader@8,vader@64")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--budget", default="15m")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--methods", default="", help="comma-separated subset of the methods (default: all), e.g. "
                        "'auto' to re-measure the planner alone; the table then shows what was run")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start at this seed (seeds first-seed .. seeds-1): fresh draws to check a rule chosen on "
                             "the first ones; with a value above 0 the run adds to the saved results")
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "image_size": 32, "budget": "2m"},
                            smoke_help="one seed, tiny test sets, 1 epoch: checks the harness")
    wanted = {m.strip() for m in args.methods.split(",") if m.strip()}
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    suite = "strategies" + (f"-{'+'.join(sorted(wanted))}" if wanted else "")
    results = load_saved(ROOT, suite) if args.first_seed > 0 and not args.smoke else {}
    for task in tasks:
        for seed in range(args.first_seed, args.seeds):
            X, y, Xt, yt = load_task(task, seed, args.smoke)
            for method in (*FIXED, *(("lora",) if isinstance(X, list) else ()), "auto"):
                if wanted and method not in wanted:
                    continue
                outcome = run_method(method, X, y, Xt, yt, seed, args)
                record(results, task, method, outcome, seed)
            save_results(ROOT, suite, results, args)
    # a subset is printed and saved on its own; the full table is left as it was
    return finish(ROOT, suite, results, args, render, "The planner against fixed strategies", key="strategies",
                  write=not wanted)


def render(results: dict, meta: dict) -> str:
    mean = lambda rows, key: statistics.fmean(r[key] for r in rows)
    std = lambda rows: statistics.pstdev([r["accuracy"] for r in rows]) if len(rows) > 1 else 0.0
    lines = [f"Measured {meta['date']} on {meta['machine']} (CPU), torch {meta['torch']}, headstart {meta['headstart']}; "
             f"{meta['seeds']} seeds, up to {meta['epochs']} epochs, images at {meta['image_size']} px, planner budget "
             f"{meta['budget']}. Test accuracy mean ± std over seeds; wall time is the mean time of `fit` (predicting "
             f"the test set not included; other work may have shared the 2 cores, so times are indicative). `python -m bench.strategies`.", "",
             "| task | baseline | linear_probe | finetune | lp_ft | scratch | lora | auto (planner) | oracle | planner − oracle | planner time ÷ oracle's | planner chose |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    cell = lambda rows: f"{mean(rows, 'accuracy'):.3f} ± {std(rows):.3f} ({mean(rows, 'seconds'):.0f} s)" if rows else "–"
    for task, by_method in results.items():
        fixed = [m for m in (*FIXED, "lora") if m in by_method]
        cells = [cell(by_method.get(m)) for m in (*FIXED, "lora", "auto")]
        if not fixed or "auto" not in by_method:  # a --methods subset: no oracle to compare with
            lines.append(f"| {task} | " + " | ".join(cells) + " | – | – | – | " + (", ".join(
                r["chosen"] for r in by_method["auto"]) if "auto" in by_method else "–") + " |")
            continue
        oracle = max(fixed, key=lambda m: mean(by_method[m], "accuracy"))
        gap = mean(by_method["auto"], "accuracy") - mean(by_method[oracle], "accuracy")
        ratio = mean(by_method["auto"], "seconds") / max(1e-9, mean(by_method[oracle], "seconds"))
        chosen = ", ".join(sorted({r["chosen"] for r in by_method["auto"]}))
        negative = sum(r["negative_transfer"] for r in by_method["auto"])
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {oracle} | {100 * gap:+.1f} pts | {ratio:.1f}× | "
                     f"{chosen}; negative transfer in {negative}/{len(by_method['auto'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
