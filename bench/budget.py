"""Does ``--budget`` hold? ``python -m bench.budget`` (issue 26, item 1).

For each budget (1, 2 and 5 minutes) and each bundled task, one ``headstart fit DATA --strategy auto
--budget B`` runs in a fresh process with a fresh feature cache, as a user's first fit would, and
its wall time is set against B. The planner's own record (``plan.json``: what it spent against the
budget, what it scored and skipped) is read back from the run folder, so the table splits the wall
time into the planner's part and the fixed part around it (starting Python and importing torch,
reading the data, saving the run folder).

Tasks (the data that ships with headstart and scikit-learn, nothing fetched):

* ``digits``: scikit-learn's optdigits, :data:`DIGITS_PER_CLASS` per class written as PNG files
  (an image folder, one subfolder per class), ``--image-size`` px;
* ``vader_movie``: the 600 bundled VADER movie-review sentences (``headstart/datasets``), the TSV as is.

The bar (issue 26): a fit with budget B ends within ``B + 10%`` plus :data:`FIXED_SECONDS` of fixed
overhead. Results go to ``bench/results/budget.json`` (``budget-smoke.json`` with ``--smoke``); the
table is printed, and with ``--render-only`` re-rendered from the saved file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = "budget"
TASKS = ("digits", "vader_movie")
BUDGETS = ("1m", "2m", "5m")
SMOKE_BUDGETS = ("5s", "15s")
DIGITS_PER_CLASS = 30  # 300 images: from 30 per class the planner scores on the fit's own validation split
MARGIN = 0.10  # of the budget
FIXED_SECONDS = 10.0  # process start, imports, reading the data, saving the run: outside the planner's clock


def seconds(budget: str) -> float:
    from headstart.config import parse_budget

    return parse_budget(budget)


# --------------------------------------------------------------------------- data


def write_task(task: str, folder: Path, smoke: bool) -> Path:
    """The task's data as ``headstart fit`` reads it: a folder of PNGs per class, or the bundled TSV."""
    if task == "vader_movie":
        from headstart.datasets import bundled_path

        return bundled_path("vader_movie_sample.tsv")
    import numpy as np
    from PIL import Image

    from headstart.datasets import load_digits_images

    X, y = load_digits_images()
    per_class = 10 if smoke else DIGITS_PER_CLASS
    rng = np.random.default_rng(0)
    root = folder / "digits"
    for label in np.unique(y):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        for i in rng.choice(np.flatnonzero(y == label), per_class, replace=False):
            Image.fromarray(X[i]).save(root / str(label) / f"{i}.png")
    return root


# --------------------------------------------------------------------------- one fit


def fit_command(data: Path, out: Path, budget: str, args) -> list[str]:
    command = [sys.executable, "-m", "headstart", "fit", str(data), "--out", str(out), "--strategy", "auto",
               "--budget", budget, "--cache-dir", str(out.parent / "cache"), "--random-state", str(args.seed)]
    if args.image_size and not str(data).endswith(".tsv"):
        command += ["--image-size", str(args.image_size)]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    backbone = {"digits": args.image_backbone, "vader_movie": args.text_backbone}[args.current_task]
    if backbone:
        command += ["--backbone", backbone]
    return command


def run_fit(task: str, data: Path, budget: str, args) -> dict:
    """Time one ``headstart fit --strategy auto --budget B`` in a fresh process; its row of the results."""
    work = Path(tempfile.mkdtemp(prefix=f"budget-{task}-"))
    try:
        args.current_task = task
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
        started = time.monotonic()
        done = subprocess.run(fit_command(data, work / "run", budget, args), env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"{task} budget {budget}: headstart fit exited {done.returncode}:\n{done.stderr[-3000:]}")
        plan = json.loads((work / "run" / "plan.json").read_text())
        # the planner's own lines (what it tried, how long each took, what it skipped): where an over-budget
        # fit spent the time
        planner_log = [line for line in done.stderr.splitlines() if line.startswith("auto:")]
        return {**row(task, budget, wall, plan), "planner_log": planner_log}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def row(task: str, budget: str, wall: float, plan: dict) -> dict:
    """What one fit shows about the budget, from its wall time and its plan.json."""
    limit = seconds(budget)
    candidates = plan.get("candidates", [])
    return {"task": task, "budget": budget, "budget_seconds": limit, "wall_seconds": wall,
            "planner_seconds": plan["spent_seconds"], "fixed_seconds": wall - plan["spent_seconds"],
            "planner_over_budget_seconds": plan.get("over_budget_seconds"),
            "within_bar": wall <= limit * (1 + MARGIN) + FIXED_SECONDS,
            "winner": plan["winner"], "winner_refit": plan.get("winner_refit"),
            "scored": [c["name"] for c in candidates if c["status"] == "scored"],
            "skipped_for_time": [c["name"] for c in candidates
                                 if c["status"] == "skipped" and "budget left" in (c.get("reason") or "")],
            "candidate_seconds": {c["name"]: c.get("seconds") for c in candidates if c["status"] == "scored"}}


# --------------------------------------------------------------------------- results


def save(results: list[dict], args) -> dict:
    from .report import save_results

    meta = save_results(ROOT, SUITE, results, args)
    meta.update({"budgets": args.budget_list, "tasks": args.task_list, "margin": MARGIN,
                 "fixed_seconds": FIXED_SECONDS, "threads": args.threads or "torch's default",
                 "image_size": args.image_size, "epochs": args.epochs or "library default",
                 "backbones": {"digits": args.image_backbone or "auto (every installed image zoo model)",
                               "vader_movie": args.text_backbone or "auto (every installed text zoo model)"}})
    name = f"{SUITE}-smoke.json" if args.smoke else f"{SUITE}.json"
    (ROOT / "bench" / "results" / name).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return meta


def render(results: list[dict], meta: dict) -> str:
    lines = [f"Measured {meta['date']} on {meta['machine']}, torch {meta['torch']}, headstart {meta['headstart']}; "
             f"threads {meta.get('threads')}; backbones {meta.get('backbones')}. One `headstart fit DATA --strategy "
             f"auto --budget B` per row, in a fresh process with a fresh feature cache. Wall: the whole command; "
             f"planner: `plan.json`'s `spent_seconds` (ranking, scoring, refit); fixed: the rest (start-up, imports, "
             f"reading the data, saving). The bar: wall ≤ B + {100 * MARGIN:.0f}% + {meta.get('fixed_seconds'):.0f} s. "
             "`python -m bench.budget` (`--render-only` re-renders this from `bench/results/budget.json`).", "",
             "| task | budget | wall s | planner s | fixed s | wall ÷ B | within the bar | winner | scored | skipped for time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['task']} | {r['budget']} | {r['wall_seconds']:.0f} | {r['planner_seconds']:.0f} | "
                     f"{r['fixed_seconds']:.0f} | {r['wall_seconds'] / r['budget_seconds']:.2f} | "
                     f"{'yes' if r['within_bar'] else '**no**'} | {r['winner']} | {len(r['scored'])} | "
                     f"{len(r['skipped_for_time'])} |")
    held = sum(r["within_bar"] for r in results)
    lines += ["", f"{held} of {len(results)} fits within the bar."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    from .report import parse_suite_args

    parser = argparse.ArgumentParser(prog="python -m bench.budget", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of: " + ", ".join(TASKS))
    parser.add_argument("--budgets", default=None, help=f"comma-separated durations (default: {','.join(BUDGETS)}; "
                        f"--smoke: {','.join(SMOKE_BUDGETS)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=None, help="the candidates' epochs (default: the library's)")
    parser.add_argument("--image-backbone", default=None, help="digits' backbone (default: auto, every installed one)")
    parser.add_argument("--text-backbone", default=None, help="vader_movie's backbone (default: auto)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of each fit (default: torch's own)")
    parser.add_argument("--render-only", action="store_true", help="print the table of the saved results")
    parser.add_argument("--merge", action="store_true", help="keep the saved rows of (task, budget) pairs not rerun")
    args = parse_suite_args(parser, argv, threads=False,
                            smoke={"image_size": 32, "epochs": 1,
                                   "image_backbone": "mobilenetv2_100", "text_backbone": "minilm_l6"},
                            smoke_help="budgets of 5 and 15 s, 10 digits per class at 32 px, one backbone per "
                                       "task, 1 epoch: checks the harness, not the budget")
    if args.render_only:
        path = ROOT / "bench" / "results" / f"{SUITE}.json"
        if not path.exists():
            raise SystemExit(f"{path} does not exist: run `python -m bench.budget` first")
        saved = json.loads(path.read_text())
        publish(render(saved["results"], saved["meta"]))
        return 0
    args.task_list = [t.strip() for t in args.tasks.split(",") if t.strip()]
    budgets = args.budgets or ",".join(SMOKE_BUDGETS if args.smoke else BUDGETS)
    args.budget_list = [b.strip() for b in budgets.split(",") if b.strip()]
    unknown = [t for t in args.task_list if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown task(s) {', '.join(unknown)}; the suite's: {', '.join(TASKS)}")
    for budget in args.budget_list:
        seconds(budget)  # a bad duration fails before anything runs
    saved_path = ROOT / "bench" / "results" / f"{SUITE}.json"
    earlier = json.loads(saved_path.read_text())["results"] if args.merge and saved_path.is_file() else []
    rerun = {(t, b) for t in args.task_list for b in args.budget_list}
    results, folder = [r for r in earlier if (r["task"], r["budget"]) not in rerun], Path(tempfile.mkdtemp(prefix="budget-data-"))
    try:
        for task in args.task_list:
            data = write_task(task, folder, args.smoke)
            for budget in args.budget_list:
                results.append(run_fit(task, data, budget, args))
                r = results[-1]
                print(f"{task} budget {budget}: wall {r['wall_seconds']:.0f} s (planner {r['planner_seconds']:.0f} s), "
                      f"winner {r['winner']}", flush=True)
                save(results, args)  # after every fit: a long run that stops keeps what it measured
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    body = render(results, save(results, args))
    if args.smoke:
        print(body)
    else:
        publish(body)
    return 0


def publish(body: str) -> None:
    """Print the table and write it as docs/benchmarks.md's budget section."""
    from .report import write_section

    print(body)
    write_section(ROOT / "docs" / "benchmarks.md", SUITE, "Does `--budget` hold? (issue 26)", body)


if __name__ == "__main__":
    raise SystemExit(main())
