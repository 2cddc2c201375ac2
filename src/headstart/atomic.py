"""Atomic file writes: write a temporary file beside the target, then rename it over the target.

A reader, or a run resumed after a crash, sees the old file or the new one, never half of one.
:func:`read_json_object` reads back the JSON objects written here, with one error for every file.
No torch here, so the CLI can use it without paying torch's import.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from .errors import RunFolderError


def _create_temporary(path: Path) -> tuple[str, int]:
    """A new empty file beside ``path`` and its permission bits: 0666 less the umask, as ``open()``
    gives (0644 under umask 022). ``tempfile.mkstemp`` made every run-folder file 0600, unreadable
    to the user's group and to others."""
    while True:
        temporary = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temporary, os.stat(temporary).st_mode & 0o777
        except FileExistsError:  # another writer's temporary: draw another name
            continue


def write_atomic(path: Path, write) -> None:
    """Call ``write(temporary_path)``, then move the result over ``path`` in one rename."""
    temporary, mode = _create_temporary(path)
    try:
        write(temporary)
        os.chmod(temporary, mode)  # writers that replace the file (safetensors' save_file) make it 0600
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomic(path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: readers see the old file or the new, never half."""
    def write(temporary):
        with open(temporary, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
    write_atomic(Path(path), write)


def write_json(path: Path, data) -> None:
    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
    write_atomic(Path(path), write)


def read_json_object(path, *, fix: str, missing_ok: bool = False) -> dict:
    """The JSON object stored in ``path`` (``{}`` for a missing file when ``missing_ok``).

    A missing file, one that is not JSON or one holding something other than an object raises
    RunFolderError naming the file and what is wrong; ``fix`` says what to do about it.
    """
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return {}
        raise RunFolderError(f"{path} is missing; {fix}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFolderError(f"{path} is not valid JSON ({error}); {fix}") from None
    if not isinstance(value, dict):
        raise RunFolderError(f"{path} must hold a JSON object, found {type(value).__name__}")
    return value
