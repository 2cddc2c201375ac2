"""Does LogME predict fine-tuned accuracy, and what does ranking cost? ``python -m bench.transferability``.

For each task (the draws and test sets of :mod:`bench.strategies`) and seed:

1. **Rank**: LogME on every layer group of every zoo backbone of the modality, from one forward pass
   per backbone with no feature cache (``headstart rank``'s work, backbone loading included), timed.
2. **Fine-tune** every ``(backbone, freeze=k)`` pair, ``k`` from 0 (train everything) to the last
   group, and measure test accuracy. Pair ``(b, k)`` is scored by the LogME of layer ``k`` of ``b``:
   the layer the planner's freeze rule looks at (freeze everything below the layer whose features
   already transfer best).
3. Report Kendall's τ between those LogME scores and the test accuracies (per seed, then mean ±
   std), the freeze depth LogME suggests against the best one found, and the ranking time as a
   share of one full fine-tune (``freeze=0``) of the top-ranked backbone on the same data.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from headstart import TransferClassifier, __version__
from headstart.backbones import ZOO
from headstart.selection.rank import default_max_examples, rank_backbones, suggest_freeze

from .report import parse_suite_args, write_section
from .strategies import load_task

ROOT = Path(__file__).resolve().parent.parent


def zoo_backbones(modality: str) -> list[str]:
    return [name for name in ZOO if ZOO.get(name).info.modality == modality and ZOO.get(name).installed]


def run_seed(task: str, seed: int, args) -> dict:
    X, y, Xt, yt = load_task(task, seed, args.smoke)
    modality = "text" if isinstance(X, list) else "image"
    backbones = zoo_backbones(modality)
    started = time.perf_counter()
    rows = rank_backbones(X, y, backbones, layers="all", cache="none", image_size=args.image_size)
    rank_seconds = time.perf_counter() - started
    pairs = []
    for name in backbones:
        own = sorted((r for r in rows if r.backbone == name), key=lambda r: r.layer_index)
        depths = [r.layer_index for r in own][: args.max_depths]
        for row in own:
            if row.layer_index not in depths:
                continue
            t0 = time.perf_counter()
            clf = TransferClassifier(backbone=name, strategy="finetune", freeze=row.layer_index, epochs=args.epochs,
                                     image_size=args.image_size, random_state=seed, cache_dir="none", verbose=0).fit(X, y)
            seconds = time.perf_counter() - t0
            accuracy = float((np.asarray(clf.predict(Xt)) == np.asarray(yt)).mean())
            pairs.append({"backbone": name, "freeze": row.layer_index, "layer": row.layer, "logme": row.score,
                          "accuracy": accuracy, "seconds": seconds})
            print(f"{task} seed {seed} {name} freeze={row.layer_index} ({row.layer}) LogME {row.score:.3f} "
                  f"accuracy {accuracy:.3f} {seconds:.1f} s", flush=True)
    tau = kendalltau([p["logme"] for p in pairs], [p["accuracy"] for p in pairs]).statistic
    top = max(rows, key=lambda r: r.score).backbone
    full = next(p for p in pairs if p["backbone"] == top and p["freeze"] == 0)
    suggested = {name: suggest_freeze([r for r in rows if r.backbone == name]) for name in backbones}
    best = max(pairs, key=lambda p: p["accuracy"])
    print(f"{task} seed {seed}: Kendall tau {tau:.3f}; ranking {rank_seconds:.1f} s = "
          f"{100 * rank_seconds / full['seconds']:.1f}% of one full fine-tune ({full['seconds']:.1f} s)", flush=True)
    return {"pairs": pairs, "tau": float(tau), "rank_seconds": rank_seconds, "full_finetune_seconds": full["seconds"],
            "top_backbone": top, "suggested_freeze": suggested, "best_pair": [best["backbone"], best["freeze"]],
            "n_train": len(y)}


def cost_seed(task: str, seed: int, args) -> dict:
    """Ranking time against one full fine-tune of the top-ranked backbone, nothing else (``--cost-only``)."""
    X, y, _, _ = load_task(task, seed, args.smoke)
    backbones = zoo_backbones("text" if isinstance(X, list) else "image")
    limit = default_max_examples(len(np.unique(y))) if args.max_examples is None else (args.max_examples or None)
    started = time.perf_counter()
    rows = rank_backbones(X, y, backbones, layers="all", cache="none", image_size=args.image_size, max_examples=limit)
    rank_seconds = time.perf_counter() - started
    top = max(rows, key=lambda r: r.score).backbone
    started = time.perf_counter()
    TransferClassifier(backbone=top, strategy="finetune", freeze=0, epochs=args.epochs, image_size=args.image_size,
                       random_state=seed, cache_dir="none", verbose=0).fit(X, y)
    full_seconds = time.perf_counter() - started
    print(f"{task} seed {seed}: ranking {rank_seconds:.1f} s, full fine-tune of {top} {full_seconds:.1f} s "
          f"({100 * rank_seconds / full_seconds:.1f}%)", flush=True)
    return {"rank_seconds": rank_seconds, "full_finetune_seconds": full_seconds, "top_backbone": top,
            "n_train": len(y), "ranked": min(len(y), limit or len(y)), "layers": len(rows)}


def _measured(meta: dict) -> str:
    return (f"Measured {meta['date']} on {meta['machine']} (CPU), torch {meta['torch']}, headstart {meta['headstart']}; "
            f"{meta['seeds']} seeds")


def render_cost(results: dict, meta: dict) -> str:
    lines = [f"{_measured(meta)}, one after the other, nothing else running; `finetune` up to {meta['epochs']} "
             f"epochs (early stopping), images at {meta['image_size']} px. Ranking: LogME on all layer groups of all zoo "
             "backbones of the modality, on the examples-ranked column's stratified subsample (the default of "
             "`headstart rank` and the planner), no feature cache, backbone loading included; the fine-tune is of the "
             "top-ranked backbone, nothing frozen, on the same examples. Median over seeds, and the ratio of the "
             "medians. `python -m bench.transferability --cost-only`.", "",
             "| task | training examples | examples ranked | layer groups ranked | ranking (median) | one full fine-tune (median) | ranking ÷ fine-tune | per seed |",
             "|---|---|---|---|---|---|---|---|"]
    for task, seeds in results.items():
        rank_s = statistics.median(s["rank_seconds"] for s in seeds)
        full_s = statistics.median(s["full_finetune_seconds"] for s in seeds)
        per_seed = "; ".join(f"{s['rank_seconds']:.1f} s / {s['full_finetune_seconds']:.1f} s" for s in seeds)
        lines.append(f"| {task} | {seeds[0]['n_train']} | {seeds[0].get('ranked', seeds[0]['n_train'])} | "
                     f"{seeds[0]['layers']} | {rank_s:.1f} s | {full_s:.1f} s | "
                     f"{100 * rank_s / full_s:.1f}% | {per_seed} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transferability", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="fashion@10,vader@8")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--max-depths", type=int, default=99, help="freeze depths tried per backbone, from 0")
    parser.add_argument("--cost-only", action="store_true",
                        help="only time ranking against one full fine-tune (no per-depth fine-tunes, no τ); "
                             "for the larger tasks, e.g. --tasks fashion@100,vader@64")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="--cost-only: rank on a stratified subsample of this many (default: what `headstart rank` "
                             "uses; 0: all)")
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "image_size": 32, "max_depths": 2},
                            smoke_help="one seed, tiny test sets, 1 epoch, 2 depths")
    results: dict = {}
    one_seed = cost_seed if args.cost_only else run_seed
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        results[task] = [one_seed(task, seed, args) for seed in range(args.seeds)]
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "torch": torch.__version__, "headstart": __version__, "seeds": args.seeds, "epochs": args.epochs,
            "image_size": args.image_size, "smoke": args.smoke}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = "transferability-cost" if args.cost_only else "transferability"
    (out / (f"{name}-smoke.json" if args.smoke else f"{name}.json")).write_text(
        json.dumps({"meta": meta, "results": results}, indent=2))
    body = (render_cost if args.cost_only else render)(results, meta)
    print(body)
    if not args.smoke:
        title = ("The cost of ranking against a fine-tune, at 100 and 64 labels per class" if args.cost_only
                 else "LogME against fine-tuned accuracy; the cost of ranking")
        write_section(ROOT / "docs" / "benchmarks.md", name, title, body)
    return 0


def _mean_std(values) -> str:
    values = list(values)
    return f"{statistics.fmean(values):.2f} ± {statistics.pstdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"


def render(results: dict, meta: dict) -> str:
    lines = [f"{_measured(meta)}, `finetune` up to {meta['epochs']} epochs, images at {meta['image_size']} px. "
             "τ: Kendall's rank correlation between the LogME of layer k and the test accuracy of fine-tuning with "
             "the groups below k frozen, over every (zoo backbone, k) pair of the modality. Ranking: all layer "
             "groups of all zoo backbones of the modality, no feature cache, backbone loading included. "
             "`python -m bench.transferability`.", "",
             "| task | (backbone, k) pairs | Kendall τ (mean ± std over seeds) | ranking | one full fine-tune | ranking ÷ fine-tune | best pair (per seed) | LogME's suggested k |",
             "|---|---|---|---|---|---|---|---|"]
    for task, seeds in results.items():
        rank_s = statistics.fmean(s["rank_seconds"] for s in seeds)
        full_s = statistics.fmean(s["full_finetune_seconds"] for s in seeds)
        best = "; ".join(f"{b} k={k}" for b, k in (s["best_pair"] for s in seeds))
        suggested = "; ".join(", ".join(f"{b} k={k}" for b, k in s["suggested_freeze"].items()) for s in seeds[:1])
        lines.append(f"| {task} | {len(seeds[0]['pairs'])} | {_mean_std(s['tau'] for s in seeds)} | {rank_s:.1f} s | "
                     f"{full_s:.1f} s | {100 * rank_s / full_s:.1f}% | {best} | {suggested} (seed 0) |")
    lines += ["", "Per pair, averaged over seeds (LogME, test accuracy):", ""]
    for task, seeds in results.items():
        keys = [(p["backbone"], p["freeze"], p["layer"]) for p in seeds[0]["pairs"]]
        cells = []
        for i, (backbone, k, layer) in enumerate(keys):
            logme = statistics.fmean(s["pairs"][i]["logme"] for s in seeds)
            accuracy = statistics.fmean(s["pairs"][i]["accuracy"] for s in seeds)
            cells.append(f"{backbone} k={k} ({layer}): {logme:.3f}, {accuracy:.3f}")
        lines.append(f"- **{task}**: " + "; ".join(cells))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
