"""Which logistic head on contrastively tuned embeddings: ``python -m bench.contrastive_head``.

``strategy="contrastive"`` tunes the body with SupCon + cross-entropy, then fits a logistic head on
the tuned embeddings of every labeled row (:func:`headstart.heads.fit_head`, ``C`` by stratified
cross-validation); the linear probe's head standardises its features per dimension first. SetFit
fits scikit-learn's default logistic regression (``C = 1``) on unit-length embeddings, not
standardised. After contrastive tuning the
labeled rows sit in tight class clusters, so a dimension's spread over them can be far smaller
than its spread over new inputs: standardising by the labeled rows' spread then magnifies
dimensions that only vary off the training rows. This bench measures that, paired: one tuned
body per task and seed, and four heads fit on the same embeddings of the same rows —

* ``standardised_cv``: features standardised per dimension, ``C`` by the library's cross-validation
  (the linear probe's head, and the contrastive head's until this bench's first run);
* ``unit_cv``: rows scaled to unit length, not standardised, ``C`` by the same cross-validation
  (:func:`headstart.heads.choose_C_by_cv`'s folds and grid walk, on the unit rows);
* ``unit_c1``: rows scaled to unit length, ``C = 1`` (SetFit's head);
* ``raw_cv``: the embeddings as they are, ``C`` by the same cross-validation: unlike the unit rows,
  a head that folds into the model's one linear layer. The library's contrastive head since the
  first run (the bench checks that the features it reads are the ones ``predict``'s head reads).

Tasks and draws are :mod:`bench.fewshot`'s (its dev suite), each task on its modality's default
backbone. Results: ``bench/results/contrastive_head.json`` and a section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

from headstart import TransferClassifier, heads
from headstart.model import predict_features

from .fewshot import load_task
from .report import finish, load_saved, parse_suite_args, record, save_results
from .transferability import _measured

ROOT = Path(__file__).resolve().parent.parent
HEADS = ("standardised_cv", "unit_cv", "unit_c1", "raw_cv")


def cv_head(rows: np.ndarray, codes: np.ndarray, n_classes: int, seed: int, *, standardize: bool):
    """The library's head fit (:func:`headstart.heads.fit_head`: ``C`` by its stratified cross-validation)
    on ``rows``, standardised or as they are; returns ``(predict(rows) -> codes, C)``."""
    head = heads.fit_head(rows, codes, n_classes, random_state=seed, standardize=standardize)
    return (lambda new_rows: (new_rows @ head.weight.T + head.bias).argmax(1)), head.C


def run(X, y, Xt, yt, seed: int, args) -> dict[str, dict]:
    started = time.perf_counter()
    clf = TransferClassifier(strategy="contrastive", random_state=seed, verbose=0, image_size=args.image_size,
                             epochs=args.epochs, cache_dir=args.cache_dir).fit(X, y)
    seconds = time.perf_counter() - started
    batch = max(64, clf.batch_size or 0)
    # the estimator's own reading of X (arrays to images, paths to clips), so the features are the head's inputs
    train_f = predict_features(clf.model_, clf._read(X, None, require_labels=False).inputs, batch_size=batch)
    test_f = predict_features(clf.model_, clf._read(Xt, None, require_labels=False).inputs, batch_size=batch)
    codes, n_classes = np.searchsorted(clf.classes_, np.asarray(y)), len(clf.classes_)
    yt = np.asarray(yt)
    weight, bias = (t.detach().cpu().numpy() for t in (clf.model_.head.weight, clf.model_.head.bias))
    agree = float((clf.classes_[(test_f @ weight.T + bias).argmax(1)] == clf.predict(Xt)).mean())
    unit_train, unit_test = normalize(train_f), normalize(test_f)
    fitted = {"standardised_cv": cv_head(train_f, codes, n_classes, seed, standardize=True),
              "unit_cv": cv_head(unit_train, codes, n_classes, seed, standardize=False),
              "raw_cv": cv_head(train_f, codes, n_classes, seed, standardize=False)}
    unit_c1 = LogisticRegression(C=1.0, max_iter=2000, tol=heads.TOLERANCE).fit(unit_train, codes)
    predictions = {name: clf.classes_[predict(unit_test if name.startswith("unit") else test_f)]
                   for name, (predict, _) in fitted.items()}
    predictions["unit_c1"] = clf.classes_[unit_c1.predict(unit_test)]
    chosen = {**{name: C for name, (_, C) in fitted.items()}, "unit_c1": 1.0}
    return {name: {"accuracy": float((predictions[name] == yt).mean()), "seconds": seconds, "seed": seed,
                   "C": chosen[name], "backbone": clf.backbone_.name, "features_agree_with_predict": agree}
            for name in HEADS}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.contrastive_head", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="vader_movie@8,vader_movie@32,vader_tweets@8,vader_amazon@8,vader_nyt@8,"
                                           "fashion@10,digits@10,mnist@10")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true",
                        help="start from no results (default: add to the saved ones, replacing a task's rerun seeds)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the strategy's own schedule")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--test-size", type=int, default=None, help="as bench.fewshot's (default: its sizes)")
    parser.add_argument("--cache-dir", default=None)
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "image_size": 32, "test_size": 40},
                            smoke_help="one seed, tiny test sets: checks the harness")
    results: dict = {} if args.fresh or args.smoke else load_saved(ROOT, "contrastive_head")
    for task in (t.strip() for t in args.tasks.split(",") if t.strip()):
        for seed in range(args.first_seed, args.seeds):
            for rows in results.get(task, {}).values():
                rows[:] = [row for row in rows if row["seed"] != seed]
            X, y, Xt, yt = load_task(task, seed, args)
            for name, outcome in run(X, y, Xt, yt, seed, args).items():
                record(results, task, name, outcome, seed)
            save_results(ROOT, "contrastive_head", results, args)
    return finish(ROOT, "contrastive_head", results, args, render, "Which head on contrastively tuned embeddings")


def render(results: dict, meta: dict) -> str:
    lines = [f"{_measured(meta)}, images at {meta['image_size']} px. One `strategy=\"contrastive\"` fit per task and "
             "seed (bench.fewshot's draws and test sets, the modality's default backbone); four logistic heads on "
             "the same tuned embeddings of the same labeled rows. Test accuracy mean over seeds; the difference from "
             "the standardised head's paired by seed, and on how many seeds it was higher / lower. "
             "`python -m bench.contrastive_head`.", "",
             "| task | seeds | standardised_cv (the probe's) | unit_cv | unit_cv − std. | unit_c1 (SetFit's) "
             "| unit_c1 − std. | raw_cv (library) | raw_cv − std. |",
             "|---|---|---|---|---|---|---|---|---|"]
    pooled: dict[str, list[float]] = {name: [] for name in HEADS[1:]}
    for task, by in results.items():
        base = {r["seed"]: r["accuracy"] for r in by["standardised_cv"]}
        cells = []
        for name in HEADS[1:]:
            diffs = [r["accuracy"] - base[r["seed"]] for r in by[name]]
            pooled[name].append(statistics.fmean(diffs))
            cells += [f"{statistics.fmean(r['accuracy'] for r in by[name]):.3f}",
                      f"{100 * statistics.fmean(diffs):+.1f} ({sum(d > 0 for d in diffs)}/{sum(d < 0 for d in diffs)})"]
        lines.append(f"| {task} | {len(base)} | {statistics.fmean(base.values()):.3f} | " + " | ".join(cells) + " |")
    lines += ["", "Mean over tasks of the per-task mean difference: "
              + ", ".join(f"{name} − standardised_cv {100 * statistics.fmean(v):+.1f} points "
                          f"({sum(d > 0 for d in v)} of {len(v)} tasks higher)" for name, v in pooled.items() if v) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
