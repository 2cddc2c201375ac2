"""Speed of headstart's building blocks on this machine: ``python -m bench.speed [--smoke]``.

For each zoo backbone measured (efficientnet_lite0 on Fashion-MNIST images at 224 px, minilm_l6 on
VADER movie sentences), in one process, one thing at a time:

* floor: examples/s of one frozen forward pass (preprocessing included) over N inputs;
* fine-tuning step: examples/s of forward + backward + AdamW step on a preprocessed batch of 32
  (freeze=0), and of headstart's whole training loop (augmentation and preprocessing included);
* linear probe: wall time of ``TransferClassifier(strategy="linear_probe").fit`` on the same N
  inputs with an empty feature cache, as a ratio to the floor (goal <= 1.2x), and of a second fit
  with the cache filled, as a fraction of the first (goal < 5%).

Every figure is the median of ``--repeats`` runs; ratios compare runs made in this same process.
Results go to ``bench/results/speed.json`` and the table in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from headstart import TransferClassifier, __version__
from headstart.backbones import create_backbone
from headstart.cache import extract_features
from headstart.model import TransferModel

from . import datasets
from .report import write_section

ROOT = Path(__file__).resolve().parent.parent


def load_inputs(modality: str, n: int):
    if modality == "image":
        X, y = datasets.fashion_mnist("train")
        keep = datasets.few_shot(y, n // 10, seed=0)
        return X[keep], y[keep].astype(str)
    texts, y = datasets.vader("movie")
    keep = datasets.few_shot(y, n // 2, seed=0)
    return [texts[i] for i in keep], y[keep].astype(str)


def time_it(function, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def finetune_step_rate(backbone_name: str, items, image_size, repeats: int, batch_size: int = 32) -> float:
    backbone = create_backbone(backbone_name, image_size=image_size)
    model = TransferModel(backbone, 10).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = backbone.preprocess(items[:batch_size], train=True)
    labels = torch.zeros(batch_size, dtype=torch.long)

    def step():
        loss = torch.nn.functional.cross_entropy(model(batch), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocator and kernels
    seconds, _ = time_it(step, max(3, repeats))
    return batch_size / seconds


def measure(backbone_name: str, modality: str, n: int, repeats: int, image_size=None) -> dict:
    items, labels = load_inputs(modality, n)
    backbone = create_backbone(backbone_name, image_size=image_size)
    extract_features(backbone, items[:16], [backbone.layer_names[-1]])  # warm-up
    floor, floor_runs = time_it(lambda: extract_features(backbone, items, [backbone.layer_names[-1]]), repeats)
    first_runs, second_runs = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            def fit():
                return TransferClassifier(backbone=backbone_name, strategy="linear_probe", image_size=image_size,
                                          cache_dir=cache, verbose=0).fit(items, labels)
            first_runs.append(time_it(fit, 1)[0])
            second_runs.append(time_it(fit, 1)[0])
    first, second = statistics.median(first_runs), statistics.median(second_runs)
    fit_loop = TransferClassifier(backbone=backbone_name, strategy="finetune", epochs=1, image_size=image_size,
                                  cache_dir="none", verbose=0).fit(items, labels)
    return {
        "backbone": backbone_name, "modality": modality, "n": len(items),
        "input": f"{image_size or 224} px Fashion-MNIST" if modality == "image" else "VADER movie sentences",
        "floor_examples_per_s": len(items) / floor, "floor_runs_s": floor_runs,
        "finetune_step_examples_per_s": finetune_step_rate(backbone_name, items, image_size, repeats),
        "finetune_loop_examples_per_s": fit_loop.fit_summary_["train_examples_per_second"],
        "linear_probe_first_fit_s": first, "linear_probe_first_runs_s": first_runs,
        "linear_probe_ratio_to_floor": first / floor,
        "linear_probe_second_fit_s": second, "linear_probe_second_runs_s": second_runs,
        "second_fit_fraction_of_first": second / first,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI: checks the harness runs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    n_image, n_text, repeats = (40, 40, 1) if args.smoke else (500, 1000, args.repeats)
    rows = [measure("efficientnet_lite0", "image", n_image, repeats),
            measure("minilm_l6", "text", n_text, repeats)]
    meta = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, {platform.processor() or 'cpu'}",
            "python": platform.python_version(), "torch": torch.__version__, "headstart": __version__,
            "date": time.strftime("%Y-%m-%d"), "repeats": repeats, "smoke": args.smoke}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("speed-smoke.json" if args.smoke else "speed.json")
    stored = json.loads(path.read_text()) if path.exists() else {}  # bench.paired's runs share the file
    path.write_text(json.dumps({**stored, "meta": meta, "rows": rows}, indent=2))
    table = ["| backbone | inputs | n | frozen forward (floor), ex/s | fine-tune step, ex/s | training loop, ex/s "
             "| linear probe fit | ÷ floor (goal ≤ 1.2) | second fit | ÷ first (goal < 5%) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['backbone']} | {r['input']} | {r['n']} | {r['floor_examples_per_s']:.1f} "
                     f"| {r['finetune_step_examples_per_s']:.1f} | {r['finetune_loop_examples_per_s']:.1f} "
                     f"| {r['linear_probe_first_fit_s']:.1f} s | {r['linear_probe_ratio_to_floor']:.2f}× "
                     f"| {r['linear_probe_second_fit_s']:.2f} s | {100 * r['second_fit_fraction_of_first']:.1f}% |")
    body = "\n".join([
        f"Measured {meta['date']} on {meta['machine']}; Python {meta['python']}, torch {meta['torch']}, "
        f"headstart {meta['headstart']}. Median of {repeats} runs each, one measurement at a time in one "
        f"process (`python -m bench.speed`). The fine-tune step is forward + backward + AdamW on a "
        f"preprocessed batch of 32 with nothing frozen; the training loop figure is headstart's whole "
        f"loop for one epoch (augmentation, preprocessing and validation included).", "", *table])
    print(body)
    if not args.smoke:
        write_section(ROOT / "docs" / "benchmarks.md", "speed", "Speed of the building blocks (CPU)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
