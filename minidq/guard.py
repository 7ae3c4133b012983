"""Nothing the user gave is overwritten: every command checks its outputs against its inputs first.

And a run's inputs may not change under it: `fingerprint` (size and SHA-256 of each data file)
is part of a training run's settings, so `--resume` after a split was edited in place is refused.

A command's inputs are the files it reads (the data splits, a checkpoint folder, a teacher, a
packed file) and its outputs the files or folder it writes. Before any work, an output that is
an input, holds one, or lies inside an input folder is refused, and an existing output file is
refused unless --overwrite says to replace it. Paths are compared resolved (symlinks, "..").
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

from .errors import MinidqError

SPLITS = ("train", "valid", "test")


class OutputError(MinidqError, ValueError):
    """An output path that would destroy an input, or an existing file without --overwrite."""


def data_inputs(data: str | Path | None) -> dict[str, Path]:
    """Every split file of a data folder, named for the message (all of them, not only the one
    read: a split the user gave is never a place to write)."""
    if data is None:
        return {}
    return {f"the {split} split": Path(data) / f"{split}.jsonl" for split in SPLITS}


def check_output(out: str | Path, flag: str, inputs: Mapping[str, str | Path | None], *, folder: bool = False,
                 overwrite: bool = False) -> Path:
    """Refuse `out` (given as `flag`) when it is, holds or lies inside one of `inputs` ({what: path});
    for a file output, also when it is a folder, or exists and `overwrite` is not set. A file's
    missing folders are made now, so that a path that cannot be written fails before the work.
    Returns `out` as a Path."""
    out = Path(out)
    target = out.resolve()
    for what, path in inputs.items():
        if path is None:
            continue
        given = Path(path).resolve()
        if target == given or given.is_relative_to(target) or (given.is_dir() and target.is_relative_to(given)):
            relation = "is" if target == given else "holds" if given.is_relative_to(target) else "is inside"
            raise OutputError(f"{flag} {out}: {relation} {what} ({path}), which this command reads; "
                              "write somewhere else")
    if folder:
        if out.exists() and not out.is_dir():
            raise OutputError(f"{flag} {out}: exists and is not a folder")
        return out
    if out.is_dir():
        raise OutputError(f"{flag} {out}: is a folder; give the file to write, e.g. {out / 'out.txt'}")
    if out.exists() and not overwrite:
        raise OutputError(f"{flag} {out}: exists; add --overwrite to replace it, or write somewhere else")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"{flag} {out}: a part of {out.parent} is a file, not a folder") from None
    return out


def fingerprint(paths: Mapping[str, str | Path | None]) -> dict[str, dict]:
    """{what: {"bytes": size, "sha256": digest}} of each existing file, read in 1 MiB pieces."""
    found = {}
    for what, path in paths.items():
        if path is None or not Path(path).is_file():
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for piece in iter(lambda: f.read(1 << 20), b""):
                digest.update(piece)
        found[what] = {"bytes": Path(path).stat().st_size, "sha256": digest.hexdigest()}
    return found
