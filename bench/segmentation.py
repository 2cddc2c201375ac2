"""Segmentation by transfer against training from scratch: ``python -m bench.segmentation``.

The task (no labeled segmentation set installs here, see ../shared/DATASETS.md): Fashion-MNIST
garments — T-shirt/top, trouser, sneaker, bag, ankle boot — pasted on crops of scikit-image's bundled
photographs, 1–3 per 64 px image, masks exact by construction
(:func:`headstart.datasets.segmentation.pasted_items`; ``--items digits`` uses scikit-learn's digits).
For each seed one draw of ``max(sizes) + test`` images is split into the training images (the
first n for each size, so sizes nest) and ``--test`` held-out images.

Methods: ``TransferSegmenter`` with strategy ``frozen`` (pretrained encoder frozen, U-Net decoder
trained), ``finetune``, ``scratch`` (the same U-Net from random weights), ``pixels`` (a per-pixel
classifier on pixel values) and ``auto`` (the planner: candidates on 80% of the training images,
kept by validation mean IoU). Figures: test mean IoU and fit seconds per seed; the table gives means,
transfer − scratch, and auto against the best fixed choice. Results: ``bench/results/segmentation.json``
and the section in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from headstart import TransferSegmenter, __version__
from headstart.datasets.segmentation import pasted_items

from . import datasets
from .report import write_section

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("frozen", "finetune", "scratch", "pixels", "auto")
GARMENTS = (0, 1, 7, 8, 9)  # T-shirt/top, trouser, sneaker, bag, ankle boot: shapes that differ at 64 px
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def draw(args, seed: int):
    if args.items == "digits":
        items, classes = "digits", None
    else:
        X, y = datasets.fashion_mnist("train")
        items, classes = (X, y, FASHION_NAMES), GARMENTS
    data = pasted_items(max(args.sizes) + args.test, size=args.size, items=items, classes=classes, seed=seed)
    return data, len(data.class_names)


def run(args) -> dict:
    path = ROOT / "bench" / "results" / ("segmentation-smoke.json" if args.smoke else "segmentation.json")
    results: dict = json.loads(path.read_text())["results"] if args.merge and path.exists() else {}
    for task in results.values():  # --merge: the methods run now replace their earlier rows, the rest stay
        for method in args.methods:
            task.pop(method, None)
    for seed in range(args.seeds):
        data, n_classes = draw(args, seed)
        test_images, test_masks = data.images[-args.test:], data.masks[-args.test:]
        for n in args.sizes:
            for method in args.methods:
                started = time.perf_counter()
                model = TransferSegmenter(strategy=method, seed=seed, verbose=0).fit(data.images[:n], data.masks[:n])
                seconds = time.perf_counter() - started
                row = {"mean_iou": float(model.score(test_images, test_masks)), "seconds": seconds}
                if method == "auto":
                    row["chosen"] = model.strategy_
                    row["plan"] = model.plan_
                results.setdefault(f"{args.items}@{n}", {}).setdefault(method, []).append(row)
                print(f"{args.items}@{n} seed {seed} {method:9s} mIoU {row['mean_iou']:.3f} {seconds:6.1f} s"
                      + (f" (chose {row['chosen']})" if method == "auto" else ""), flush=True)
                _save(args, results)
    return results


def _save(args, results: dict) -> None:
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
            "headstart": __version__, "torch": torch.__version__, "seeds": args.seeds, "test": args.test,
            "size": args.size, "items": args.items, "smoke": args.smoke}
    path = ROOT / "bench" / "results" / ("segmentation-smoke.json" if args.smoke else "segmentation.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))


def render(saved: dict) -> str:
    meta, results = saved["meta"], saved["results"]
    mean = lambda rows, key: float(np.mean([r[key] for r in rows]))
    lines = [f"`python -m bench.segmentation`, {meta['date']}, {meta['machine']}; headstart {meta['headstart']}. "
             f"Test mean IoU on {meta['test']} held-out {meta['size']} px images (background included as a class), "
             f"mean over {meta['seeds']} seeds, and fit seconds; U-Net over efficientnet_lite0 "
             f"(segmentation-models-pytorch), the estimator's defaults.", "",
             "| task | frozen | finetune | scratch | pixels | auto (chose) | best transfer − scratch | auto − best fixed |",
             "|---|---|---|---|---|---|---|---|"]
    for task, methods in results.items():
        cells = []
        for method in METHODS[:-1]:
            rows = methods.get(method, [])
            cells.append(f"{mean(rows, 'mean_iou'):.3f} ({mean(rows, 'seconds'):.0f} s)" if rows else "—")
        auto = methods.get("auto", [])
        chose = ", ".join(r["chosen"] for r in auto)
        cells.append(f"{mean(auto, 'mean_iou'):.3f} ({mean(auto, 'seconds'):.0f} s; {chose})" if auto else "—")
        fixed = {m: mean(methods[m], "mean_iou") for m in METHODS[:-1] if methods.get(m)}
        transfer = max(fixed.get("frozen", -1), fixed.get("finetune", -1))
        gain = f"{100 * (transfer - fixed['scratch']):+.1f} pts" if "scratch" in fixed and transfer >= 0 else "—"
        versus = f"{100 * (mean(auto, 'mean_iou') - max(fixed.values())):+.1f} pts" if auto and fixed else "—"
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {gain} | {versus} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.segmentation", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(v) for v in s.split(",")], default=[10, 30, 100])
    parser.add_argument("--methods", type=lambda s: [m for m in s.split(",") if m], default=list(METHODS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--items", choices=("fashion", "digits"), default="fashion")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, bundled digits: checks the harness runs")
    parser.add_argument("--render", action="store_true", help="only rewrite the docs table from the saved JSON")
    parser.add_argument("--merge", action="store_true", help="keep the saved rows of the methods not run now")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.seeds, args.test, args.size, args.items = [6], 1, 4, 32, "digits"
    torch.set_num_threads(args.threads)
    path = ROOT / "bench" / "results" / ("segmentation-smoke.json" if args.smoke else "segmentation.json")
    if not args.render:
        run(args)
    body = render(json.loads(path.read_text()))
    print(body)
    if not args.smoke:
        write_section(ROOT / "docs" / "benchmarks.md", "segmentation", "Segmentation: transfer against scratch (issue 28)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
