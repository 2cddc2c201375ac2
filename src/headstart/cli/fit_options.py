"""The options of ``headstart fit``, generated from the fields of :class:`~headstart.config.FitConfig`
(flag, type, choices, bounds and help), so they always match the estimator's parameters."""

from __future__ import annotations

import argparse
import dataclasses

from ..config import FitConfig


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
        group.add_argument(*spec["aliases"], _flag(field.name), dest=field.name, type=_typed(field),
                           default=field.default, choices=spec["choices"],
                           metavar=spec["metavar"] or field.name.upper(), help=help_text)
    group.add_argument("--quiet", "-q", dest="verbose", action="store_const", const=0,
                       help="No progress bars or log lines (same as --verbose 0).")


def fit_params(args: argparse.Namespace) -> dict:
    """The estimator's parameters from parsed ``headstart fit`` arguments, one per FitConfig field."""
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(FitConfig)}
