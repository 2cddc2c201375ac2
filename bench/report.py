"""Write one suite's section of docs/benchmarks.md, leaving the other suites' sections as they are."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

HEADER = "# Benchmarks\n\nEvery table here is written by a script in `bench/`; rerun it to refresh its section.\n"


def write_section(path: Path, key: str, title: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    begin, end = f"<!-- bench:{key}:begin -->", f"<!-- bench:{key}:end -->"
    section = f"{begin}\n## {title}\n\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)
