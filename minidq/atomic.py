"""Write a file so that a crash never leaves half of it: a temporary file, then a rename.

`os.replace` is atomic on POSIX: a reader (or a resumed run) sees the old file or the new one,
never a mix. A process killed mid-write leaves only its temporary file, `.NAME.XXXXXXXX.tmp`
beside NAME; `remove_stale` deletes those at the start of the next run.

`save_safetensors` writes a .safetensors file that way, with the user's umask (safetensors'
own save_file makes a 0600 file of its own) and byte for byte the same for the same tensors
(safetensors orders the header's metadata as a hash map does: differently in each process).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save


def atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """`write(tmp)` fills a temporary file next to `path`, which then replaces `path` in one step.

    The temporary file is created with mode 0666 less the umask, like any file `open` makes
    (tempfile.mkstemp's 0600 would carry over to `path` through the rename)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(str(tmp))
        with open(tmp, "rb+") as f:  # on disk before the rename, or a power cut could leave an empty file
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a quota: say which file, and that the old one is whole
        raise OSError(e.errno, f"cannot write it ({e.strerror or e}); {kept(path)}", str(path)) from None
    except RuntimeError as e:  # torch.save reports a failed write as a RuntimeError
        if "write" not in str(e).lower():
            raise
        raise OSError(errno.EIO, f"cannot write it ({str(e).splitlines()[0]}; is the disk full?); {kept(path)}",
                      str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)


def kept(path: Path) -> str:
    return f"the previous {path.name} is intact" if path.exists() else "nothing was written"


def replace_folder(path: str | Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` fills a new folder, which then takes the place of `path`: a failure half-way
    (a full disk) leaves the old folder whole, never a mix of old and new files."""
    path = Path(path)
    tmp, old = (path.parent / f".{path.name}.{secrets.token_hex(4)}.{kind}" for kind in ("tmp", "old"))
    try:
        tmp.mkdir()
        write(tmp)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    except OSError as e:
        if old.exists() and not path.exists():
            os.replace(old, path)
        reason = os.strerror(e.errno) if e.errno else str(e)  # not the inner file's own "cannot write it (...)"
        raise OSError(e.errno, f"cannot write it ({reason}); {kept(path)}", str(path)) from None
    finally:
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)


def remove_stale(path: str | Path) -> list[Path]:
    """Delete the temporary files (and folders) that a killed atomic_write or replace_folder of
    `path` left behind; returns them."""
    path = Path(path)
    stale = sorted([*path.parent.glob(f".{path.name}.*.tmp"), *path.parent.glob(f".{path.name}.*.old")])
    for tmp in stale:
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink(missing_ok=True)
    return stale


def save_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """safetensors' bytes with the header's keys sorted (the tensor data is laid out in a fixed
    order already), written atomically."""
    def write(tmp: str) -> None:
        data = save(tensors, metadata=metadata)
        n = int.from_bytes(data[:8], "little")
        header = json.dumps(json.loads(data[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
        header += b" " * (-len(header) % 8)  # the data stays 8-byte aligned, as safetensors pads it
        Path(tmp).write_bytes(len(header).to_bytes(8, "little") + header + data[8 + n:])
    atomic_write(path, write)
