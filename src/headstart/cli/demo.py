"""``headstart demo``: strategy="auto" on two bundled real data sets, its plan and its report (see
:mod:`headstart.demo`)."""

from __future__ import annotations

import argparse


def add_parser(commands) -> None:
    from ..demo import FULL_PROMISE, QUICK_PROMISE

    demo = commands.add_parser(
        "demo", help="strategy='auto' on two bundled real data sets: the plan, the choice and why, the report.",
        description="Fit strategy='auto' on a few labeled handwritten digits (images) and VADER movie-review "
                    "sentences (text): every candidate (the no-transfer baseline, a linear probe, fine-tuning "
                    "rungs) is scored on held-out data and timed, one is kept with the reason, and it is checked "
                    "against the no-transfer baseline. Each run is saved with its HTML report, scored on a "
                    f"held-out test split. Takes {FULL_PROMISE}.",
    )
    demo.add_argument("--out", "-o", default="runs/demo", metavar="DIR",
                      help="Folder for the run folders, their report.html and demo_results.json (default: %(default)s).")
    demo.add_argument("--quick", action="store_true",
                      help=f"Fewer examples, 2 epochs and a 30 s planner budget per data set: a smoke test that "
                           f"takes {QUICK_PROMISE}.")
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick)
    return 0
