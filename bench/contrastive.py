"""Contrastive body tuning against the linear probe and LP-FT, on few labels: ``python -m bench.contrastive``.

Tasks (the same draws and test sets as :mod:`bench.strategies`): ``vader@8`` (VADER movie snippets,
8 labeled per class, ``minilm_l6``) and ``fashion@10`` (Fashion-MNIST, 10 per class,
``efficientnet_lite0`` at ``--image-size``); each over ``--seeds`` (the labeled draw and the training
seed change together).

Methods, the library's defaults otherwise (early stopping on a 20% validation split):
``supcon`` (``strategy="contrastive"``, in-batch supervised contrastive, Khosla et al. 2020),
``pairs`` (``contrastive_loss="pairs"``, SetFit's cosine-similarity pairs, Tunstall et al. 2022),
``linear_probe`` and ``lp_ft``. Test accuracy and fit seconds, which decide the default objective
(issue 24: "measure which is better and faster, keep one default").
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from headstart import TransferClassifier

from .report import finish, load_saved, parse_suite_args, record, save_results
from .strategies import load_task
from .transferability import _measured  # the same 'Measured ... on ...' opening line

ROOT = Path(__file__).resolve().parent.parent
METHODS = {
    "supcon": {"strategy": "contrastive", "contrastive_loss": "supcon"},
    "pairs": {"strategy": "contrastive", "contrastive_loss": "pairs"},
    "linear_probe": {"strategy": "linear_probe"},
    "lp_ft": {"strategy": "lp_ft"},
}


def run(method: str, X, y, Xt, yt, seed: int, args) -> dict:
    options = dict(METHODS[method])
    if options["strategy"] != "linear_probe":  # the probe runs no loop, so it takes no epochs
        options["epochs"] = args.epochs
    started = time.perf_counter()
    clf = TransferClassifier(random_state=seed, verbose=0, image_size=args.image_size, cache_dir=args.cache_dir,
                             **options).fit(X, y)
    seconds = time.perf_counter() - started
    return {"accuracy": float((np.asarray(clf.predict(Xt)) == np.asarray(yt)).mean()), "seconds": seconds,
            "seed": seed, "epochs_run": clf.fit_summary_.get("epochs_run")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.contrastive", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="vader@8,fashion@10")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start at this seed; with a value above 0 the run adds to the saved results instead of replacing them")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--cache-dir", default=None)
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "image_size": 32},
                            smoke_help="one seed, tiny test sets, 1 epoch: checks the harness")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    results: dict = load_saved(ROOT, "contrastive") if args.first_seed > 0 and not args.smoke else {}
    for task in tasks:
        for seed in range(args.first_seed, args.seeds):
            X, y, Xt, yt = load_task(task, seed, args.smoke)
            for method in methods:
                record(results, task, method, run(method, X, y, Xt, yt, seed, args), seed)
            save_results(ROOT, "contrastive", results, args)
    return finish(ROOT, "contrastive", results, args, render, "Contrastive body tuning on few labels")


def render(results: dict, meta: dict) -> str:
    lines = [f"{_measured(meta)}, up to {meta['epochs']} epochs with early stopping, images at {meta['image_size']} px. "
             "Test accuracy mean ± std over seeds, and the median fit time in seconds. `supcon` and `pairs` are "
             "`strategy=\"contrastive\"` with `contrastive_loss` set. The feature cache is kept between runs, so "
             "`linear_probe` and LP-FT's probe stage may read features an earlier run computed. "
             "`python -m bench.contrastive`.", ""]
    methods = [m for m in METHODS if any(m in by for by in results.values())]
    lines += ["| task | " + " | ".join(f"{m} acc | {m} s" for m in methods) + " |", "|---" * (2 * len(methods) + 1) + "|"]
    for task, by_method in results.items():
        cells = []
        for m in methods:
            rows = by_method.get(m)
            if not rows:
                cells += ["–", "–"]
                continue
            accuracy = [r["accuracy"] for r in rows]
            spread = statistics.pstdev(accuracy) if len(rows) > 1 else 0.0
            cells += [f"{statistics.fmean(accuracy):.3f} ± {spread:.3f}",
                      f"{statistics.median(r['seconds'] for r in rows):.0f}"]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", "SupCon (the default objective) against each other method, paired by seed: mean difference in "
              "points, and the seeds on which SupCon scored higher.", ""]
    for task, by_method in results.items():
        supcon = {r["seed"]: r["accuracy"] for r in by_method.get("supcon", [])}
        for m in (m for m in methods if m != "supcon"):
            diffs = [supcon[r["seed"]] - r["accuracy"] for r in by_method.get(m, []) if r["seed"] in supcon]
            if diffs:
                lines.append(f"- {task}, supcon − {m}: {100 * statistics.fmean(diffs):+.1f} points, higher on "
                             f"{sum(d > 0 for d in diffs)} of {len(diffs)} seeds")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
