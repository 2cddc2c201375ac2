"""Write one suite's section of docs/benchmarks.md, leaving the other suites' sections as they are."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

HEADER = ("# Benchmarks\n\nEvery table here is written by a script in `bench/`; rerun it to refresh its section. The `###`\n"
          "subsections a script does not write itself (earlier measurements, kept as history) stay below its table.\n")


def cpu_model() -> str:
    """The processor's name, for the results' metadata: the machine behind a bench can change between
    sessions, and timings from two processors do not compare (``platform.processor()`` is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def write_section(path: Path, key: str, title: str, body: str) -> None:
    """Replace the suite's marked section with ``body``; the ``###`` subsections the section held whose
    headings ``body`` does not write (earlier measurements kept as history, written by hand) follow
    it, in their order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    begin, end = f"<!-- bench:{key}:begin -->", f"<!-- bench:{key}:end -->"
    pattern = re.compile(re.escape(begin) + r"(.*?)" + re.escape(end), re.S)
    found = pattern.search(text)
    kept = _subsections(found.group(1), skip=set(_subsections(body))) if found else {}
    section = f"{begin}\n## {title}\n\n{body.strip()}\n" + "".join(f"\n{part.strip()}\n" for part in kept.values()) + end
    text = pattern.sub(lambda _: section, text) if found else text.rstrip() + "\n\n" + section + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


def _subsections(markdown: str, skip: set[str] = frozenset()) -> dict[str, str]:
    """``{heading line: the subsection's text}`` of each ``### `` subsection (up to the next one),
    leaving out those whose heading line is in ``skip``."""
    parts = re.split(r"(?m)^(?=### )", markdown)
    return {part.splitlines()[0]: part for part in parts[1:] if part.splitlines()[0] not in skip}


def add_threads_option(parser) -> None:
    """``--threads N``: torch's thread count for the run (default: torch's own, one per core)."""

    def positive(text: str) -> int:
        import argparse

        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"--threads takes a whole number of at least 1, got {text!r}")
        return value

    parser.add_argument("--threads", type=positive, default=None,
                        help="torch threads (default: torch's own). Convolutions sum in another order on another "
                             "thread count, and a fine-tune on 10 images per class then lands up to 9 points apart "
                             "(docs/benchmarks.md): to reproduce a table, use the thread count of its 'Measured' line")


def apply_threads(args) -> None:
    """Set torch's thread count from ``--threads``, before anything is timed or trained."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def parse_suite_args(parser, argv, *, smoke: dict, smoke_help: str, threads: bool = True):
    """Parse a suite's command line, adding ``--smoke`` (and ``--threads`` unless ``threads=False``).

    ``--smoke`` sets each option named in ``smoke`` to its value there: the suite's small sizes,
    which check that the harness runs end to end. The thread count is applied at once, before
    anything is timed or trained.
    """
    parser.add_argument("--smoke", action="store_true", help=smoke_help)
    if threads:
        add_threads_option(parser)
    args = parser.parse_args(argv)
    apply_threads(args)
    if args.smoke:
        for name, value in smoke.items():
            setattr(args, name, value)
    return args


def record(results: dict, task: str, method: str, outcome: dict, seed: int) -> None:
    """Add one run's outcome to ``results[task][method]`` and print it as one line."""
    results.setdefault(task, {}).setdefault(method, []).append(outcome)
    print(f"{task} seed {seed} {method:16s} {outcome['accuracy']:.3f} {outcome['seconds']:7.1f} s"
          + (f"  chose {outcome['chosen']}" if "chosen" in outcome else ""), flush=True)


def save_results(root: Path, suite: str, results: dict, args) -> dict:
    """Write ``bench/results/<suite>[-smoke].json`` (meta + results) under ``root``; return the meta.

    Called after every seed as well as at the end, so a long run that stops keeps what it measured.
    """
    import json
    import platform
    import time

    import torch

    from headstart import __version__

    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "torch": torch.__version__, "headstart": __version__,
            **{key: getattr(args, key) for key in ("seeds", "epochs", "image_size", "budget", "smoke") if hasattr(args, key)}}
    out = root / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = f"{suite}-smoke.json" if getattr(args, "smoke", False) else f"{suite}.json"
    (out / name).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return meta


def load_saved(root: Path, suite: str) -> dict:
    """The results of ``bench/results/<suite>.json``, so a run of further seeds adds to them."""
    import json

    saved = root / "bench" / "results" / f"{suite}.json"
    return json.loads(saved.read_text())["results"] if saved.exists() else {}


def finish(root: Path, suite: str, results: dict, args, render, title: str, *, key: str | None = None,
           write: bool = True) -> int:
    """Save the results, print the rendered table, and (full sizes only) write it into docs/benchmarks.md."""
    meta = save_results(root, suite, results, args)
    body = render(results, meta)
    print(body)
    if write and not getattr(args, "smoke", False):
        write_section(root / "docs" / "benchmarks.md", key or suite, title, body)
    return 0
