"""Wall time of one fit over 1 and 2 processes: ``python -m bench.scale [--smoke]``.

The same ``headstart fit`` (minilm_l6 fine-tuned on the packaged VADER movie sentences, CPU, empty
feature cache) run as one process and under ``torchrun --nproc_per_node 2`` (DDP over gloo), the
cores shared out: one process gets every core as torch threads, each of two processes half of them.
Two figures per run: the whole command (start-up, imports and reading the data included, what a user
waits for) and the fit alone (``fit_seconds`` in the run folder's metrics.json). Each is the median
of ``--repeats`` runs. The global batch is the same in both, so both take the same optimizer steps on
the same examples; only dropout masks differ (each process draws its own).

Then the planner (``--strategy auto --backbone minilm_l6`` on ``--planner-per-class`` sentences per class)
run one candidate after another and on a local Ray cluster (``--ray local``: one task per candidate,
the cores shared out), each in a fresh process: wall time of the whole command, median of
``--repeats``, and whether the two ``plan.json`` agree (candidates, their held-out scores, the winner).

Results go to ``bench/results/scale.json`` (``scale-smoke.json`` with ``--smoke``) and the table to
``docs/benchmarks.md`` (not with ``--smoke``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BACKBONE = "minilm_l6"


def write_data(folder: Path, n: int) -> Path:
    """``n`` VADER movie sentences, half of each label, as a CSV headstart reads (text, label)."""
    from headstart.datasets import load_vader_movie_sample

    texts, labels = load_vader_movie_sample()
    folder.mkdir(parents=True, exist_ok=True)
    keep = np.concatenate([np.flatnonzero(np.asarray(labels) == c)[: n // 2] for c in np.unique(labels)])
    path = folder / "sentences.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((texts[i], labels[i]) for i in keep)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_fit(data: Path, out: Path, processes: int, threads: int, epochs: int) -> dict:
    """One ``headstart fit`` over ``processes`` processes of ``threads`` torch threads each."""
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                                          "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    fit = ["-m", "headstart", "fit", str(data), "--out", str(out), "--strategy", "finetune", "--backbone", BACKBONE,
           "--epochs", str(epochs), "--batch-size", "32", "--cache-dir", "none", "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *launcher, *fit], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"the {processes}-process fit failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"wall_s": wall, "fit_s": metrics["fit_seconds"], "val_accuracy": metrics["val_accuracy"],
            "train_examples_per_second": metrics["train_examples_per_second"]}


def measure(data: Path, processes: int, threads: int, epochs: int, repeats: int) -> dict:
    runs = []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            runs.append(run_fit(data, Path(folder) / "run", processes, threads, epochs))
    return {"processes": processes, "threads_per_process": threads, "runs": runs,
            **{f"median_{key}": statistics.median(r[key] for r in runs)
               for key in ("wall_s", "fit_s", "val_accuracy", "train_examples_per_second")}}


def run_planner(data: Path, out: Path, ray: bool, epochs: int) -> dict:
    """One ``headstart fit --strategy auto``, candidates one by one or on a local Ray cluster."""
    command = [sys.executable, "-m", "headstart", "fit", str(data), "--out", str(out), "--strategy", "auto",
               "--backbone", BACKBONE, "--epochs", str(epochs), "--cache-dir", "none", "--device", "cpu", "--quiet",
               *(["--ray", "local"] if ray else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"the planner ({'Ray' if ray else 'sequential'}) failed (exit {done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    plan = json.loads((out / "plan.json").read_text())
    scores = {c["name"]: c.get("mean") for c in plan["candidates"] if c["status"] == "scored"}
    return {"wall_s": wall, "winner": plan["winner"], "scores": scores}


def measure_planner(data: Path, epochs: int, repeats: int) -> dict:
    """Sequential and Ray runs interleaved (A B A B …), so drift on a shared machine lands on both."""
    runs = {"sequential": [], "ray": []}
    for _ in range(repeats):
        for kind in runs:
            with tempfile.TemporaryDirectory() as folder:
                runs[kind].append(run_planner(data, Path(folder) / "run", kind == "ray", epochs))
    same = all(r["winner"] == runs["sequential"][0]["winner"] and r["scores"] == runs["sequential"][0]["scores"]
               for rs in runs.values() for r in rs)
    return {kind: {"runs": rs, "median_wall_s": statistics.median(r["wall_s"] for r in rs)} for kind, rs in runs.items()} | {
        "same_plan": same, "winner": runs["sequential"][0]["winner"], "candidates": len(runs["sequential"][0]["scores"])}


def planner_table(planner: dict) -> list[str]:
    sequential, ray = planner["sequential"]["median_wall_s"], planner["ray"]["median_wall_s"]
    return ["| planner | whole command | speed-up | same plan (candidates, scores, winner) |", "|---|---|---|---|",
            f"| candidates one by one | {sequential:.1f} s | 1.00× | |",
            f"| local Ray (`--ray local`) | {ray:.1f} s | {sequential / ray:.2f}× | "
            f"{'yes' if planner['same_plan'] else '**no**'} ({planner['candidates']} scored, winner {planner['winner']}) |"]


def table(rows: list[dict]) -> list[str]:
    one = rows[0]
    lines = ["| processes | threads each | whole command | fit alone | speed-up (fit) | training ex/s | val accuracy |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['processes']} | {r['threads_per_process']} | {r['median_wall_s']:.1f} s "
                     f"| {r['median_fit_s']:.1f} s | {one['median_fit_s'] / r['median_fit_s']:.2f}× "
                     f"| {r['median_train_examples_per_second']:.1f} | {r['median_val_accuracy']:.3f} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run each: checks the harness runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--planner-per-class", type=int, default=20, help="sentences per class for the planner part")
    parser.add_argument("--skip-planner", action="store_true", help="measure the one fit over processes only")
    args = parser.parse_args(argv)
    n, epochs, repeats = (24, 1, 1) if args.smoke else (600, 2, args.repeats)
    cores = os.cpu_count() or 1
    planner = None
    with tempfile.TemporaryDirectory() as folder:
        data = write_data(Path(folder), n)
        rows = [measure(data, processes, max(1, cores // processes), epochs, repeats) for processes in (1, 2)]
        if not args.skip_planner:
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                raise SystemExit("the planner part needs Ray: pip install 'headstart[ray]' (or --skip-planner)")
            small = write_data(Path(folder) / "planner", 2 * (6 if args.smoke else args.planner_per_class))
            planner = measure_planner(small, epochs, repeats)
    import torch
    from headstart import __version__

    meta = {"machine": f"{platform.machine()}, {cores} cores, {platform.processor() or 'cpu'}",
            "python": platform.python_version(), "torch": torch.__version__, "headstart": __version__,
            "date": time.strftime("%Y-%m-%d"), "n": n, "epochs": epochs, "repeats": repeats, "smoke": args.smoke,
            "backbone": BACKBONE}
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / ("scale-smoke.json" if args.smoke else "scale.json")).write_text(
        json.dumps({"meta": meta, "rows": rows, "planner": planner}, indent=2))
    body = "\n".join([
        f"Measured {meta['date']} on {meta['machine']}; Python {meta['python']}, torch {meta['torch']}, headstart "
        f"{meta['headstart']}. One `headstart fit --strategy finetune --backbone {BACKBONE}` on {n} VADER movie "
        f"sentences ({epochs} epoch{'s' if epochs != 1 else ''}, global batch 32, CPU) alone and under `torchrun --nproc_per_node 2` (gloo), "
        f"the cores shared out; median of {repeats} runs (`python -m bench.scale`). \"Whole command\" includes "
        f"start-up and reading the data; \"fit alone\" is the run folder's `fit_seconds`.", "", *table(rows)]
        + ([] if planner is None else [
            "", f"The planner (`headstart fit --strategy auto --backbone {BACKBONE}`, {args.planner_per_class} sentences per "
            f"class, {epochs} epochs) with its candidates one by one and as tasks on a local Ray cluster, each run a "
            f"fresh process (Ray's start-up counted), the two interleaved, median of {repeats}:", "",
            *planner_table(planner)]))
    print(body)
    if not args.smoke:
        from .report import write_section

        write_section(ROOT / "docs" / "benchmarks.md", "scale", "One fit over several processes (CPU)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
