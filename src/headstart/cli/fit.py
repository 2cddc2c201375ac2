"""``headstart fit``: train a classifier on labeled data and save it to a run folder.

The arguments are recorded in the run folder first, so that ``--resume RUN_DIR`` continues an
interrupted fit with its own data and options.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

from ..atomic import write_json
from ..distributed import finish, is_main
from ..errors import ConfigError, DataPathError
from .arguments import DATA_HELP, LISTED, PROG, add_column_options, check_backbone_name, load_data, load_inputs
from .fit_options import add_fit_config_options, fit_params
from .format import fit_summary_lines


def add_parser(commands) -> None:
    fit = commands.add_parser(
        "fit", help="Train a classifier on labeled data and save it to a run folder.",
        description="Train a classifier on DATA and save it to the run folder --out. " + DATA_HELP + ".",
        epilog="Example: headstart fit photos/ --out runs/photos --strategy finetune --epochs 5",
    )
    fit.add_argument("data", metavar="DATA", nargs="?", help=DATA_HELP)
    fit.add_argument("--out", "-o", metavar="RUN_DIR",
                     help="Run folder to write (model.safetensors, config.json, metrics.json, history.json); "
                          "training checkpoints go to RUN_DIR/checkpoint until the fit finishes.")
    fit.add_argument("--resume", metavar="RUN_DIR",
                     help="Continue an interrupted `headstart fit --out RUN_DIR` with its own data and options.")
    fit.add_argument("--target", metavar="PATH",
                     help="Unlabeled inputs of the deployment domain (folder or table) for --adapt.")
    fit.add_argument("--task", choices=("classification", "segmentation"), default="classification",
                     help="classification (one label per input; default) or segmentation (a label per pixel: DATA is "
                          "a folder of images with --masks MASKS_DIR, or a root holding images/ and masks/; "
                          "strategies frozen, finetune, lp_ft, scratch, pixels, auto; linear_probe means frozen).")
    fit.add_argument("--masks", metavar="MASKS_DIR",
                     help="--task segmentation: the folder of label-mask PNGs, one per image with the same name.")
    add_column_options(fit, labels=True)
    add_fit_config_options(fit)
    fit.set_defaults(handler=cmd_fit)


def _resume_args(args: argparse.Namespace) -> argparse.Namespace:
    """The arguments an interrupted fit was started with, read back from its run folder."""
    from ..runs import FIT_ARGS_FILE

    folder = Path(args.resume).expanduser()
    recorded = folder / FIT_ARGS_FILE
    if not recorded.is_file():
        raise DataPathError(f"cannot resume {folder}: it has no {FIT_ARGS_FILE}, so it was not started by "
                            f"`{PROG} fit --out {folder}` (or it finished and was cleaned up); start the fit again")
    try:
        saved = json.loads(recorded.read_text(encoding="utf-8"))
        return argparse.Namespace(**{**vars(args), **saved["args"], "resume": None, "out": str(folder)})
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataPathError(f"{recorded} is damaged ({error}); start the fit again") from None


def _absolute_paths(args: argparse.Namespace) -> argparse.Namespace:
    """The arguments with every path made absolute: fit_args.json (for ``--resume`` from another
    folder) and config.json record them, and a relative path there meant nothing elsewhere."""
    paths = [name for name in ("data", "target", "out", "checkpoint_dir", "cache_dir", "masks")
             if getattr(args, name, None)]
    if args.cache_dir and str(args.cache_dir).lower() == "none":  # memory only: a word, not a folder
        paths.remove("cache_dir")
    if _is_local_model_folder(args.backbone):
        paths.append("backbone")
    return argparse.Namespace(**{**vars(args), **{name: str(Path(getattr(args, name)).expanduser().absolute())
                                                  for name in paths}})


def _is_local_model_folder(name: str) -> bool:
    """``--backbone ./my-model``: a folder path, as opposed to a zoo or provider name."""
    from ..backbones import PROVIDERS, ZOO

    return (name not in ("auto", "precomputed") and name not in ZOO and not name.startswith(PROVIDERS)
            and os.path.isdir(os.path.expanduser(name)))


def _checked_params(args: argparse.Namespace, out: Path) -> dict:
    """The estimator's parameters, with every option combination checked before the data is read."""
    from ..fitting import check_options

    params = fit_params(args)
    if params.get("checkpoint_dir") is None:
        params["checkpoint_dir"] = str(out / "checkpoint")
    check_options(params, where="fit")  # the one check of the options' values and combinations
    check_backbone_name(params["backbone"])
    if out.exists() and not out.is_dir():
        raise DataPathError(f"--out {out} exists and is not a folder; pass a folder path for the run")
    return params


def _record_args(args: argparse.Namespace, out: Path) -> None:
    """Write the arguments (paths already absolute) to the run folder, for ``--resume``."""
    from ..runs import FIT_ARGS_FILE

    recorded = {key: value for key, value in vars(args).items() if key not in ("handler", "resume", "out")}
    write_json(out / FIT_ARGS_FILE, {"args": recorded})


def cmd_fit(args: argparse.Namespace) -> int:
    from ..estimator import TransferClassifier

    if args.resume:
        args = _resume_args(args)
    if not args.data or not args.out:
        raise DataPathError(f"`{PROG} fit` needs DATA and --out RUN_DIR (or --resume RUN_DIR)")
    args = _absolute_paths(args)
    out = Path(args.out)
    if getattr(args, "task", "classification") == "segmentation":
        return cmd_fit_segmentation(args, out)
    if getattr(args, "masks", None):
        raise ConfigError(f"--masks {args.masks} belongs to --task segmentation; add --task segmentation, or drop --masks")
    params = _checked_params(args, out)
    data = load_data(args.data, args, require_labels=True)  # bad data fails before any run folder exists
    main = is_main()  # under torchrun every process runs this command; one writes and prints
    out.mkdir(parents=True, exist_ok=True)
    if main:
        _record_args(args, out)
    if params["verbose"] and main:
        print(f"[headstart] {len(data)} {data.modality} examples from {data.source}")
    # unlabeled, so read as predict reads its inputs: a folder needs no class subfolders
    target = load_inputs(args.target, args, modality=data.modality, listed=LISTED).inputs if args.target else None
    try:
        clf = TransferClassifier(**params).fit(data, X_target=target)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; the epochs that finished are checkpointed in {params['checkpoint_dir']}: "
              f"continue with `{PROG} fit --resume {shlex.quote(str(out))}`", file=sys.stderr)
        return 130
    folder = clf.save(out)
    if main:
        _clean_up_and_report(args, params, out, clf, folder)
    finish()
    return 0


def _clean_up_and_report(args, params: dict, out: Path, clf, folder: Path) -> None:
    from ..checkpoint import remove_checkpoints

    # Spent: the next fit with these options would resume it. RUN_DIR/checkpoint is headstart's own folder
    # and goes whole (a kill mid-cleanup may have left it empty); a --checkpoint-dir loses only our files.
    if Path(params["checkpoint_dir"]) == out / "checkpoint" and not getattr(args, "checkpoint_dir", None):
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    else:
        remove_checkpoints(params["checkpoint_dir"])
    print("\n".join(fit_summary_lines(clf, folder)))
    print(f"next: {PROG} evaluate {shlex.quote(str(folder))} TEST_DATA   |   "
          f"{PROG} predict {shlex.quote(str(folder))} INPUTS")


# --------------------------------------------------------------------------- --task segmentation

# FitConfig fields that TransferSegmenter takes (under its own names); any other option given a
# non-default value is refused rather than silently ignored.
_SEGMENTATION_OPTIONS = {"backbone": "backbone", "strategy": "strategy", "freeze": "freeze", "epochs": "epochs",
                         "lr": "lr", "batch_size": "batch_size", "image_size": "image_size", "window": "window",
                         "random_state": "seed", "verbose": "verbose"}


def segmentation_params(args: argparse.Namespace) -> dict:
    """TransferSegmenter's parameters from ``headstart fit --task segmentation`` arguments."""
    from ..config import DEFAULTS

    for name, value in fit_params(args).items():
        if name not in _SEGMENTATION_OPTIONS and value != getattr(DEFAULTS, name):
            raise ConfigError(f"--{name.replace('_', '-')} {value} does not apply to --task segmentation; drop it "
                              "(segmentation takes --backbone --strategy --freeze --epochs --lr --batch-size "
                              "--image-size --window --random-state)")
    params = {seg: getattr(args, name) for name, seg in _SEGMENTATION_OPTIONS.items()}
    if params["strategy"] == "linear_probe":  # FitConfig's default: the frozen encoder is its analogue
        params["strategy"] = "frozen"
    return params


def cmd_fit_segmentation(args: argparse.Namespace, out: Path) -> int:
    from ..segmentation import TransferSegmenter

    if out.exists() and not out.is_dir():
        raise DataPathError(f"--out {out} exists and is not a folder; pass a folder path for the run")
    params = segmentation_params(args)
    out.mkdir(parents=True, exist_ok=True)
    _record_args(args, out)
    try:
        seg = TransferSegmenter(**params, run_dir=str(out)).fit(args.data, args.masks)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; the epochs that finished are checkpointed in {out / 'checkpoint'}: "
              f"continue with `{PROG} fit --resume {shlex.quote(str(out))}`", file=sys.stderr)
        return 130
    val = [h["val_mean_iou"] for h in seg.history_ if "val_mean_iou" in h]
    print(f"segmentation: {seg.strategy_} on {seg.config_.backbone}, {len(seg.classes_)} classes "
          f"{seg.classes_.tolist()}, image size {seg.image_size_}, {seg.fit_seconds_:.1f} s")
    if val:
        print(f"validation mean IoU: {max(val):.4f} ({seg.n_val_images_} held-out images)")
    for row in seg.plan_:
        print(f"  {'*' if row['chosen'] else ' '} {row['strategy']:<9} val mean IoU {row['val_mean_iou']:.4f}  "
              f"{row['seconds']:.1f} s")
    print(f"wrote {out}")
    print(f"next: {PROG} evaluate {shlex.quote(str(out))} IMAGES_DIR --masks MASKS_DIR   |   "
          f"{PROG} predict {shlex.quote(str(out))} IMAGES_DIR --out MASKS_OUT")
    return 0
