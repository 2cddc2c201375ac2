"""``headstart report``: one self-contained HTML page about a run folder (see :mod:`headstart.report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError, RunFolderError
from .arguments import DATA_HELP, PROG, add_column_options, load_data


def _curve_sizes(text: str) -> list[int]:
    from ..report import check_curve_sizes

    try:
        return check_curve_sizes(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(commands) -> None:
    report = commands.add_parser(
        "report", help="Write an HTML report: what a run chose and why, against the no-transfer baseline.",
        description="Write one self-contained HTML page about the run in RUN_DIR: what was chosen and why (the "
                    "planner's candidates and its negative-transfer verdict), the backbone/layer ranking and the "
                    "training times; with labeled test DATA also test accuracy with 95% intervals for the chosen "
                    "model, and for the no-transfer baseline and a linear probe both refit on the same half of DATA "
                    "(the like-for-like comparison), the confusion matrix, per-class scores and a learning "
                    "curve (accuracy against labeled examples per class). The numbers also go into "
                    "RUN_DIR/metrics.json under 'report'.",
        epilog="Example: headstart report runs/photos test_photos/ --curve-sizes 1,5,20",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="A run folder written by `headstart fit`.")
    report.add_argument("data", metavar="DATA", nargs="?",
                        help="Optional labeled test data the run never saw: " + DATA_HELP + ". The learning curve "
                             "splits it 50/50 (stratified): one half trains, the other scores.")
    report.add_argument("--out", "-o", metavar="FILE.html", help="Where to write the page (default: RUN_DIR/report.html).")
    report.add_argument("--curve-sizes", type=_curve_sizes, default="1,2,5,10,20", metavar="N,N,...",
                        help="Labeled examples per class for the learning curve; sizes above the smallest class of "
                             "the training half are skipped (default: %(default)s).")
    add_column_options(report, labels=True)
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import build_report

    run_dir = Path(args.run_dir).expanduser()
    if not run_dir.is_dir():  # before reading DATA, which may take a while
        raise RunFolderError(f"run folder {str(run_dir)!r} does not exist; pass the --out folder of `{PROG} fit` "
                             f"or a `clf.save()` path")
    data = load_data(args.data, args, require_labels=True) if args.data else None
    target = build_report(run_dir, data, out=args.out, curve_sizes=args.curve_sizes)
    print(f"wrote {target}")
    print(f"the same numbers are in {run_dir / 'metrics.json'} under 'report'")
    return 0
