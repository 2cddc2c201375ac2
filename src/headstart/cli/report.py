"""``headstart report``: one self-contained HTML page about a run folder (see :mod:`headstart.report`).

A classification run gets the comparative report (:func:`headstart.report.build_report`); a
segmentation run, told apart by its ``config.json``, gets the page of predicted masks beside the
truth (:func:`headstart.report.segmentation.build_segmentation_report`).
"""

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
                    "RUN_DIR/metrics.json under 'report'. For a segmentation run: the chosen strategy, its test "
                    "mean IoU, the candidates against the no-transfer baselines, per-class IoU, and predicted masks "
                    "over the images beside the truth.",
        epilog="Examples: headstart report runs/photos test_photos/ --curve-sizes 1,5,20; for a segmentation run, "
               "headstart report runs/cells test_cells/ (test_cells/ holding images/ and masks/).",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="A run folder written by `headstart fit`.")
    report.add_argument("data", metavar="DATA", nargs="?",
                        help="Optional labeled test data the run never saw: " + DATA_HELP + ". The learning curve "
                             "splits it 50/50 (stratified): one half trains, the other scores. For a segmentation "
                             "run, required: a folder holding images/ and masks/ (matched by file stem), or the "
                             "images folder with --masks.")
    report.add_argument("--masks", metavar="MASKS_DIR",
                        help="Segmentation runs only: the folder of the true masks of DATA's images, one per image "
                             "with the same file stem (default: DATA/masks beside DATA/images).")
    report.add_argument("--out", "-o", metavar="FILE.html", help="Where to write the page (default: RUN_DIR/report.html).")
    report.add_argument("--curve-sizes", type=_curve_sizes, metavar="N,N,...",
                        help="Labeled examples per class for the learning curve; sizes above the smallest class of "
                             "the training half are skipped (default: 1,2,5,10,20).")
    add_column_options(report, labels=True)
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import build_report

    run_dir = Path(args.run_dir).expanduser()
    if not run_dir.is_dir():  # before reading DATA, which may take a while
        raise RunFolderError(f"run folder {str(run_dir)!r} does not exist; pass the --out folder of `{PROG} fit` "
                             f"or a `clf.save()` path")
    from ..segmentation import is_segmentation_run

    if is_segmentation_run(run_dir):  # config.json says task "segmentation"
        return _segmentation_report(run_dir, args)
    if args.masks is not None:
        raise ConfigError(f"--masks {args.masks}: {run_dir} is a classification run, and --masks is for segmentation "
                          f"runs; drop --masks (DATA's labels come from its folders or its label column)")
    data = load_data(args.data, args, require_labels=True) if args.data else None
    from ..report import DEFAULT_CURVE_SIZES

    sizes = DEFAULT_CURVE_SIZES if args.curve_sizes is None else args.curve_sizes
    target = build_report(run_dir, data, out=args.out, curve_sizes=sizes)
    print(f"wrote {target}")
    print(f"the same numbers are in {run_dir / 'metrics.json'} under 'report'")
    return 0


def _segmentation_report(run_dir: Path, args: argparse.Namespace) -> int:
    from ..report.segmentation import build_segmentation_report

    given = [f"--{name.replace('_', '-')}" for name in ("curve_sizes", "text_column", "image_column", "audio_column",
                                                         "label_column", "strict") if getattr(args, name, None)]
    if given:  # classification options: refused rather than ignored, so nobody believes they took effect
        raise ConfigError(f"{' and '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to the report of "
                          f"the segmentation run {run_dir}; drop {'it' if len(given) == 1 else 'them'}")
    if not args.data:
        raise ConfigError(f"{run_dir} is a segmentation run: its report needs labeled test images; run "
                          f"`{PROG} report {run_dir} DATA_DIR` with DATA_DIR holding images/ and masks/, or "
                          f"`{PROG} report {run_dir} IMAGES_DIR --masks MASKS_DIR`")
    target = build_segmentation_report(run_dir, args.data, args.masks, out=args.out)
    print(f"wrote {target}")
    return 0
