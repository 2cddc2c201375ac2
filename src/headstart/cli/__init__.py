"""``headstart``: the command line.

Subcommands: ``fit``, ``predict``, ``evaluate``, ``models list``, ``models pull``, ``demo``,
``rank`` and ``report``, one module each (its parser beside its ``cmd_*``); :mod:`.format` holds
the shared output formatting and :mod:`.fit_options` the ``headstart fit`` options derived from
:class:`~headstart.config.FitConfig`.

Errors headstart raises on purpose (:class:`~headstart.errors.HeadstartError`) are printed as one
line, ``headstart: error: <message>``, with exit status 2; Ctrl-C exits with 130. Any other
exception is a bug and keeps its traceback. Heavy modules (torch, transformers) are imported only
inside the subcommands, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import sys

from .._version import __version__
from ..errors import HeadstartError
from . import demo, evaluate, fit, models, predict, rank, report
from .arguments import PROG, usage

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Transfer learning for images, texts and audio that checks itself against a no-transfer "
                    "baseline.",
        epilog="Run `headstart COMMAND --help` for the options of each command. Quick tour: `headstart demo`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (fit, predict, evaluate, models, demo, rank, report):  # the order --help lists them in
        command.add_parser(commands)
    parser.set_defaults(handler=lambda args: usage(parser))
    return parser


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
