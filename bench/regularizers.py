"""Plain fine-tuning against each regularizer, on small real data: ``python -m bench.regularizers``.

Tasks (the same draws and test sets as :mod:`bench.strategies`): ``fashion@10``, ``fashion@100``
(Fashion-MNIST, ``efficientnet_lite0`` at ``--image-size``) and ``vader@8``, ``vader@64`` (VADER movie
snippets, ``minilm_l6``); each over ``--seeds`` (the labeled draw and the training seed change
together).

Methods, all ``strategy="finetune"`` with the library's defaults otherwise (full fine-tune, early
stopping on a 20% validation split): ``plain``; the weight-space and feature-space regularizers
``l2_sp``, ``delta``, ``bss``, ``lwf`` at their own default weights; the data-side options
``label_smoothing=0.1`` and, by modality, ``mixup=0.2`` (images) or ``token_dropout=0.1`` (text);
``average_checkpoints=3``; label smoothing and averaging together (``ls+avg``); and
``strategy="lp_ft"``, plain, with label smoothing (``lp_ft+ls``, the planner's tiny-data default rung)
and with both (``lp_ft+ls+avg``). With ``--planner-tasks`` the planner (``strategy="auto"``) runs on those
tasks too, to show what it picks there.
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

ROOT = Path(__file__).resolve().parent.parent
METHODS = {
    "plain": {},
    "l2_sp": {"regularizer": "l2_sp"},
    "delta": {"regularizer": "delta"},
    "bss": {"regularizer": "bss"},
    "lwf": {"regularizer": "lwf"},
    "label_smoothing": {"label_smoothing": 0.1},
    "augment": {},  # filled per modality: mixup for images, token dropout for text
    "avg_checkpoints": {"average_checkpoints": 3},
    # the two that helped at fashion@10, together; and LP-FT (Kumar et al. 2022: the head is fitted
    # first so its gradients do not distort the features), plain and with them
    "ls+avg": {"label_smoothing": 0.1, "average_checkpoints": 3},
    "lp_ft": {"strategy": "lp_ft"},
    "lp_ft+ls+avg": {"strategy": "lp_ft", "label_smoothing": 0.1, "average_checkpoints": 3},
    # LP-FT with label smoothing: the planner's tiny-data rung until LP-FT was skipped there
    "lp_ft+ls": {"strategy": "lp_ft", "label_smoothing": 0.1},
}
REGULARIZED = [m for m in METHODS if m not in ("plain", "lp_ft")]  # lp_ft is a schedule, shown for reference


def options_for(method: str, is_text: bool) -> dict:
    if method == "augment":
        return {"token_dropout": 0.1} if is_text else {"mixup": 0.2}
    return METHODS[method]


def run(method: str, X, y, Xt, yt, seed: int, args) -> dict:
    is_text = isinstance(X, list)
    common = dict(random_state=seed, verbose=0, image_size=args.image_size, epochs=args.epochs, cache_dir=args.cache_dir)
    options = {"strategy": "auto", "budget": args.budget} if method == "auto" else {"strategy": "finetune", **options_for(method, is_text)}
    started = time.perf_counter()
    clf = TransferClassifier(**common, **options).fit(X, y)
    seconds = time.perf_counter() - started
    outcome = {"accuracy": float((np.asarray(clf.predict(Xt)) == np.asarray(yt)).mean()), "seconds": seconds}
    outcome["seed"] = seed
    if method == "auto":
        outcome["chosen"] = clf.plan_["winner"]
    else:
        outcome["drift"] = weight_drift(clf.backbone_, args.image_size)
    return outcome


def weight_drift(backbone, image_size: int) -> float:
    """``||w - w0|| / ||w0||`` over the backbone's floating-point weights: how far fine-tuning moved it from
    the pretrained ``w0``. A weight-space regularizer can only hold back a model that moves."""
    import torch

    from headstart.backbones import create_backbone

    reference = dict(create_backbone(backbone.name, image_size=image_size).named_parameters())
    moved = base = 0.0
    with torch.no_grad():
        for name, param in backbone.named_parameters():
            start = reference[name].to(param.device)
            moved += float((param - start).pow(2).sum())
            base += float(start.pow(2).sum())
    return (moved / base) ** 0.5 if base else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.regularizers", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="fashion@10,vader@8,fashion@100,vader@64")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--planner-tasks", default="fashion@10,vader@8", help="tasks on which the planner runs too")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start at this seed; with a value above 0 the run adds to the saved results instead of replacing them")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--budget", default="15m")
    parser.add_argument("--cache-dir", default=None)
    args = parse_suite_args(parser, argv, smoke={"seeds": 1, "epochs": 1, "image_size": 32, "budget": "1m"},
                            smoke_help="one seed, tiny test sets, 1 epoch: checks the harness")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    planner_tasks = {t.strip() for t in args.planner_tasks.split(",") if t.strip()}
    results: dict = load_saved(ROOT, "regularizers") if args.first_seed > 0 and not args.smoke else {}
    for task in tasks:
        for seed in range(args.first_seed, args.seeds):
            X, y, Xt, yt = load_task(task, seed, args.smoke)
            for method in methods + (["auto"] if task in planner_tasks else []):
                outcome = run(method, X, y, Xt, yt, seed, args)
                record(results, task, method, outcome, seed)
            save_results(ROOT, "regularizers", results, args)
    return finish(ROOT, "regularizers", results, args, render, "Regularized fine-tuning on small data")


def render(results: dict, meta: dict) -> str:
    mean = lambda rows: statistics.fmean(r["accuracy"] for r in rows)
    lines = [f"Measured {meta['date']} on {meta['machine']} (CPU), torch {meta['torch']}, headstart {meta['headstart']}; "
             f"{meta['seeds']} seeds, `strategy=\"finetune\"` (nothing frozen), up to {meta['epochs']} epochs with early "
             f"stopping, images at {meta['image_size']} px. Test accuracy mean ± std over seeds; Δ is the best "
             "regularized row minus plain fine-tuning, in points. `augment` is mixup 0.2 for images and token "
             "dropout 0.1 for text. `python -m bench.regularizers`.", ""]
    methods = [m for m in (*METHODS, "auto") if any(m in by for by in results.values())]
    lines += ["| task | " + " | ".join(methods) + " | best regularized | Δ vs plain |", "|---" * (len(methods) + 3) + "|"]
    for task, by_method in results.items():
        cells = []
        for m in methods:
            rows = by_method.get(m)
            if not rows:
                cells.append("–")
                continue
            spread = statistics.pstdev([r["accuracy"] for r in rows]) if len(rows) > 1 else 0.0
            chosen = f" [{', '.join(sorted({r['chosen'] for r in rows}))}]" if m == "auto" else ""
            cells.append(f"{mean(rows):.3f} ± {spread:.3f}{chosen}")
        regularized = [m for m in REGULARIZED if m in by_method]
        best = max(regularized, key=lambda m: mean(by_method[m])) if regularized else None
        delta = f"{100 * (mean(by_method[best]) - mean(by_method['plain'])):+.1f}" if best and "plain" in by_method else "–"
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {best or '–'} | {delta} |")
    drifted = [m for m in methods if any("drift" in r for by in results.values() for r in by.get(m, []))]
    if drifted:
        lines += ["", "Weight drift, `||w - w0|| / ||w0||` of the backbone after fitting (mean over the seeds that "
                  "recorded it), in units of 10⁻³:", "",
                  "| task | " + " | ".join(drifted) + " |", "|---" * (len(drifted) + 1) + "|"]
        for task, by_method in results.items():
            cells = []
            for m in drifted:
                values = [r["drift"] for r in by_method.get(m, []) if "drift" in r]
                cells.append(f"{1e3 * statistics.fmean(values):.2f}" if values else "–")
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
