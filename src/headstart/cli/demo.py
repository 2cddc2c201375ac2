"""``headstart demo``: linear_probe, finetune and scratch on two bundled real data sets (see
:mod:`headstart.demo`)."""

from __future__ import annotations

import argparse


def add_parser(commands) -> None:
    demo = commands.add_parser(
        "demo", help="Compare linear_probe, finetune and scratch on two bundled real data sets.",
        description="Fit linear_probe, finetune and scratch (the no-transfer baseline) on bundled handwritten "
                    "digits (images) and VADER movie-review sentences (text), score each on a held-out test "
                    "split, and save the best transfer model of each data set.",
    )
    demo.add_argument("--out", "-o", default="runs/demo", metavar="DIR",
                      help="Folder for the saved models and demo_results.json (default: %(default)s).")
    demo.add_argument("--quick", action="store_true",
                      help="Few examples and 2 epochs: a smoke test that runs in well under a minute.")
    demo.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick)
    return 0
