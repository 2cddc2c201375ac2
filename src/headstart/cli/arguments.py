"""What several commands share: the program name, the help text of DATA, the table-column options,
and reading DATA with its warnings about skipped inputs shown as one headstart line each."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

PROG = "headstart"
DATA_HELP = ("a folder of images laid out as DATA/<class>/<image>, or a table (.csv .tsv .jsonl .json .parquet) "
             "with an input column (text or image path) and a label column")


def usage(parser: argparse.ArgumentParser) -> int:
    """A command named without its subcommand: show its help on stderr, exit status 2."""
    parser.print_help(sys.stderr)
    return 2


def add_column_options(parser: argparse.ArgumentParser, *, labels: bool) -> None:
    group = parser.add_argument_group("table columns (found automatically unless named)")
    group.add_argument("--text-column", metavar="NAME", help="Column holding the texts.")
    group.add_argument("--image-column", metavar="NAME",
                       help="Column holding image paths (relative paths are read from the table's folder).")
    if labels:
        group.add_argument("--label-column", metavar="NAME", help="Column holding the labels.")
    group.add_argument("--strict", action="store_true",
                       help="Fail on the first unreadable image instead of skipping it with a warning.")


def check_backbone_name(name: str) -> None:
    """Fail before reading any data when the backbone name cannot be resolved (with suggestions)."""
    from ..backbones import PROVIDERS, ZOO, create_backbone

    if name in ("auto", "precomputed") or name in ZOO or name.startswith(PROVIDERS) or os.path.isdir(name):
        return
    create_backbone(name)  # an unknown name raises UnknownNameError ("Did you mean ...") before loading anything


def load_data(path: str, args: argparse.Namespace, *, require_labels: bool):
    """load_dataset, with its warnings about skipped images shown as one headstart line each."""
    from ..data import load_dataset

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
