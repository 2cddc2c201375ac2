"""``headstart rank``: rank backbones and their layers by a transferability score, without training."""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import ConfigError
from .arguments import DATA_HELP, PROG, add_column_options, check_backbone_name, load_data
from .format import table


def add_parser(commands) -> None:
    from ..selection import SCORES
    from ..selection.rank import DEFAULT_MAX_EXAMPLES

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
    rank.add_argument("--quiet", "-q", action="store_true",
                      help="No progress bar or progress lines on stderr (the ranking on stdout is unchanged).")
    add_column_options(rank, labels=True)
    rank.set_defaults(handler=cmd_rank)


def _named_backbones(args: argparse.Namespace, modality: str) -> list[str]:
    """The names given with --backbones, each checked to take ``modality`` inputs."""
    from ..backbones import ZOO, backbone_modality

    names = [name.strip() for name in args.backbones.split(",") if name.strip()]
    if not names:
        raise ConfigError(f"--backbones {args.backbones!r} names no backbone; pass comma-separated names, "
                          f"e.g. --backbones {','.join(ZOO.names()[:2])}")
    for name in names:
        kind = backbone_modality(name)
        if kind is not None and kind != modality:
            raise ConfigError(f"--backbones: {name} is a(n) {kind} backbone but {args.data} holds {modality} "
                              f"inputs; pick {modality} backbones (`{PROG} models list` shows each modality)")
        check_backbone_name(name)
    return names


def _installed_backbones(args: argparse.Namespace, modality: str) -> list[str]:
    """Every installed zoo model of ``modality``, with a warning naming the ones not installed."""
    from ..backbones import ZOO

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


def _example_limit(args: argparse.Namespace, data) -> int | None:
    """How many examples to score (None: all), from --max-examples and the number of classes."""
    from ..selection.rank import default_max_examples

    n_classes = len(set(map(str, data.labels)))
    if args.max_examples is not None and args.max_examples != 0 and args.max_examples < 2 * n_classes:
        raise ConfigError(f"--max-examples {args.max_examples}: pass at least 2 per class ({2 * n_classes} for the "
                          f"{n_classes} classes of {args.data}), or 0 to score all {len(data)} examples")
    return default_max_examples(n_classes) if args.max_examples is None else (args.max_examples or None)


def _print_ranking(args: argparse.Namespace, data, names: list[str], rows, limit, total: float) -> None:
    from ..selection import suggest_freeze

    scored = len(data) if limit is None or limit >= len(data) else limit
    subsample = f"a stratified {scored} of {len(data)}" if scored < len(data) else f"{len(data)}"
    print(f"ranked {len(names)} backbone(s) on {subsample} {data.modality} examples of {data.source} "
          f"by {args.score} (higher is better)" + ("; --max-examples 0 scores all" if scored < len(data) else "") + "\n")
    print(table(["rank", "backbone", "layer", args.score, "seconds"],
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


def _progress_line(message: str) -> None:
    """Progress goes to stderr: stdout holds the ranking, which scripts read."""
    print(f"[{PROG}] {message}", file=sys.stderr, flush=True)


def cmd_rank(args: argparse.Namespace) -> int:
    from ..selection import SCORES, rank_backbones

    SCORES.get(args.score)  # an unknown score fails before any data is read
    if args.image_size is not None and args.image_size < 1:
        raise ConfigError(f"--image-size {args.image_size} must be a positive number of pixels, e.g. 224")
    data = load_data(args.data, args, require_labels=True)
    names = (_named_backbones(args, data.modality) if args.backbones is not None
             else _installed_backbones(args, data.modality))
    cache = "none" if str(args.cache_dir).lower() == "none" else (args.cache_dir or None)
    limit = _example_limit(args, data)
    started = time.perf_counter()
    rows = rank_backbones(list(data.inputs), data.labels, names, layers=args.layers, cache=cache,
                          image_size=args.image_size, score=args.score, max_examples=limit,
                          progress=not args.quiet, log=None if args.quiet else _progress_line)
    _print_ranking(args, data, names, rows, limit, time.perf_counter() - started)
    return 0
