"""What several commands share: the program name, the help text of DATA, the table-column options,
and reading data with its warnings about skipped inputs shown as one headstart line each, in the
command line's words (``--strict``) rather than the Python API's (``strict=True``, ``.skipped``)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

PROG = "headstart"
DATA_HELP = ("a folder laid out as DATA/<class>/<file> (images, or audio files: .wav .flac .ogg …), or a table "
             "(.csv .tsv .jsonl .json .parquet) with an input column (text, image path or audio path) and a label "
             "column")
# What the data layer tells Python callers, and what a command-line user reads instead.
_API_WORDS = (("All are listed in the returned data's .skipped (pass strict=True to fail instead).", "{listed}"),
              ("strict=True", "--strict"))
LISTED = "Pass --strict to stop at the first unreadable file instead."


def usage(parser: argparse.ArgumentParser) -> int:
    """A command named without its subcommand: show its help on stderr, exit status 2."""
    parser.print_help(sys.stderr)
    return 2


def add_column_options(parser: argparse.ArgumentParser, *, labels: bool) -> None:
    group = parser.add_argument_group("table columns (found automatically unless named)")
    group.add_argument("--text-column", metavar="NAME", help="Column holding the texts.")
    group.add_argument("--image-column", metavar="NAME",
                       help="Column holding image paths (relative paths are read from the table's folder).")
    group.add_argument("--audio-column", metavar="NAME",
                       help="Column holding audio file paths (relative paths are read from the table's folder).")
    if labels:
        group.add_argument("--label-column", metavar="NAME", help="Column holding the labels.")
    group.add_argument("--strict", action="store_true",
                       help="Fail on the first unreadable file instead of skipping it with a warning.")


def check_backbone_name(name: str) -> None:
    """Fail before reading any data when the backbone name cannot be resolved (with suggestions)."""
    from ..backbones import PROVIDERS, ZOO, create_backbone

    if name in ("auto", "precomputed") or name in ZOO or name.startswith(PROVIDERS) or os.path.isdir(name):
        return
    create_backbone(name)  # an unknown name raises UnknownNameError ("Did you mean ...") before loading anything


def _columns(args: argparse.Namespace) -> dict:
    return {"text_column": args.text_column, "image_column": args.image_column,
            "audio_column": getattr(args, "audio_column", None), "strict": getattr(args, "strict", False)}


def load_data(path: str, args: argparse.Namespace, *, require_labels: bool):
    """load_dataset, its warnings about skipped files shown as one headstart line each, in CLI words."""
    from ..data import load_dataset

    return read_for_cli(lambda: load_dataset(path, label_column=getattr(args, "label_column", None),
                                             require_labels=require_labels, **_columns(args)))


def load_inputs(path: str, args: argparse.Namespace, *, modality: str | None, listed: str):
    """load_unlabeled (what ``predict`` reads: any folder, a table, one file), shown like :func:`load_data`;
    ``listed`` says where the skipped files are listed."""
    from ..data.inputs import load_unlabeled

    return read_for_cli(lambda: load_unlabeled(path, modality=modality, **_columns(args)), listed=listed)


def cli_words(message: str, listed: str = LISTED) -> str:
    """A data-layer message in the command line's words: its flag, and where the skipped files are listed."""
    for api, cli in _API_WORDS:
        message = message.replace(api, cli.format(listed=listed))
    return message


def read_for_cli(read, *, listed: str = LISTED):
    """``read()``, its UserWarnings printed as ``headstart: warning: ...`` in CLI words."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        data = read()
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            print(f"{PROG}: warning: {cli_words(str(warning.message), listed)}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return data
