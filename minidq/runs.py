"""A training run's folder: what lets a long run be stopped, resumed and trusted.

    OUT/last.ckpt          model, optimizer and RNG states, the loop's progress and the run's
                           settings, written atomically with a SHA-256 of its contents
    OUT/best/              the HF checkpoint of the lowest validation loss, replaced as a whole
    OUT/log.jsonl          one line per log_every steps and per evaluation
    OUT/train_config.json  the TrainConfig and the settings, for a person to read
    OUT/.lock              the id of the process training into the folder
    OUT/previous/          with --overwrite, the replaced run, until the new one has saved

A resume must have the same settings (training, model and quantization configs, the command
line, the data files' hashes) unless told otherwise; it then ends with exactly the weights and log
of an uninterrupted run, because the batch order is a pure function of (seed, epoch) and every
random generator is restored.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from . import distributed
from .atomic import atomic_write, remove_stale
from .errors import MinidqError

if TYPE_CHECKING:
    from .model import Bart
    from .train import TrainConfig

# What a run writes into its output folder (student.packed: minidq distill); --overwrite replaces them.
RUN_FILES = ("best", "last.ckpt", "log.jsonl", "train_config.json", "student.packed")
PREVIOUS = "previous"  # --overwrite: the replaced run's files wait here until the new run has saved
LOCK = ".lock"  # the id of the process training into the folder
RETIRED = {"layer_map"}  # recorded by older runs; the student's depths (in "model") decide it now


class TrainingError(MinidqError, RuntimeError):
    """Training cannot go on (a diverged loss, an output folder or checkpoint of another run)."""


def check_out_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a file, a folder another process is training into, a run to resume that is not
    there, or a folder holding something (another run)."""
    if out.exists() and not out.is_dir():
        raise TrainingError(f"{out}: exists and is not a folder (the output folder of a run)")
    holder = lock_holder(out)
    if holder is not None:
        raise TrainingError(f"{out}: another run (process {holder}) is training into it; wait for it to end, "
                            "or choose another output folder")
    if resume:
        if not (out / "last.ckpt").is_file():
            raise TrainingError(f"{out / 'last.ckpt'}: no checkpoint to resume from")
    elif out.is_dir() and any(p.name != LOCK for p in out.iterdir()) and not overwrite:
        held = ", ".join(sorted(p.name for p in out.iterdir() if p.name != LOCK)[:5])
        raise TrainingError(f"{out}: not empty (holds {held}); resume that run or overwrite it "
                            "(--resume / --overwrite), or choose another output folder")


def prepare_out_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """A folder for this run: a new or empty one, the run to resume, or (overwrite) one whose run
    is set aside in OUT/previous/ until this one has saved (a run that fails first gives it back)."""
    check_out_dir(out, resume, overwrite)
    if overwrite and not resume:
        kept = out / PREVIOUS
        if kept.is_dir():  # a replacement that never saved: previous/ still holds the run before it
            _remove([out / name for name in RUN_FILES])
        else:
            kept.mkdir(parents=True)
            for name in RUN_FILES:
                if (out / name).exists():
                    os.replace(out / name, kept / name)
    out.mkdir(parents=True, exist_ok=True)
    take_lock(out)
    for name in ("last.ckpt", "log.jsonl", "best"):  # temp files of a run killed while writing
        remove_stale(out / name)


def lock_holder(out: Path) -> int | None:
    """The process id in OUT/.lock when that process is alive and not this one; else None (no
    lock, or a stale one that a killed run left)."""
    try:
        pid = int((out / LOCK).read_text().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)  # signal 0: is it there? (sends nothing)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return pid


def take_lock(out: Path) -> None:
    """OUT/.lock holds this process's id while it trains: a second run into the same folder is
    refused instead of interleaving its log and checkpoints with this one's."""
    path = out / LOCK
    if path.exists():  # stale or our own (check_out_dir refused a live one): replace it
        path.unlink()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:  # another run took it between our check and now
        raise TrainingError(f"{out}: another run started training into it at the same moment") from None
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")


def release_lock(out: Path) -> None:
    if lock_holder(out) is None:  # ours (or stale): never remove a live run's
        (out / LOCK).unlink(missing_ok=True)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def give_back_previous(out: Path) -> None:
    """The overwritten run, back in place of a replacement that failed before saving anything."""
    kept = out / PREVIOUS
    if kept.is_dir():
        _remove([out / name for name in RUN_FILES])
        for path in kept.iterdir():
            os.replace(path, out / path.name)
        kept.rmdir()


def run_settings(model: Bart, cfg: TrainConfig, extra: dict | None) -> dict:
    """Everything that defines a run, as JSON-able data: a resumed run must have the same."""
    settings = {
        "train": {k: v for k, v in asdict(cfg).items() if k not in ("out_dir", "progress")},  # the folder may move
        "model": {k: v for k, v in model.config.to_dict().items() if k != "tokenizer_sha256"},  # not a setting
        "quant": asdict(model.quant_config) if model.quant_config is not None else None,
        "run": extra or {},
    }
    if cfg.precision == "fp32":  # absent at the default, so checkpoints of earlier runs still resume
        del settings["train"]["precision"]
    if distributed.world_size() > 1:  # each process's random state is saved: resume with as many
        settings["world_size"] = distributed.world_size()
    return json.loads(json.dumps(settings))


def changed_settings(saved: dict, now: dict) -> list[str]:
    """'section.key: saved -> now' for each setting that differs. Sections minidq no longer
    records (RETIRED) are not compared: a run saved before still resumes."""
    changes = []
    for section in sorted((set(saved) | set(now)) - RETIRED):
        a, b = saved.get(section), now.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += [f"{section}.{k}: {a.get(k)!r} -> {b.get(k)!r}"
                        for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            changes.append(f"{section}: {a!r} -> {b!r}")
    return changes


def rng_state() -> dict:
    """This process's random generators: CPU, Python and (dropout on a GPU draws from them) CUDA."""
    state = {"torch_rng": torch.get_rng_state(), "python_rng": random.getstate()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"][: torch.cuda.device_count()])


def save_checkpoint(path: Path, model: Bart, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Everything needed to continue exactly: only tensors, numbers and strings (weights_only-safe).
    Under torchrun every rank calls it (each hands over its random state); rank 0 writes."""
    states = distributed.gather(rng_state())
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        **states[0],
        **state,
    }
    if len(states) > 1:  # ranks 1.. draw their own dropout masks
        checkpoint["other_ranks_rng"] = states[1:]
    checkpoint["sha256"] = digest(checkpoint)
    if distributed.is_main():
        atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def digest(obj) -> str:
    """SHA-256 over a checkpoint's contents (tensors by their bytes, the rest by repr), in key
    order: a bit flipped on disk changes it, where torch.load would read the flipped value."""
    h = hashlib.sha256()

    def feed(x) -> None:
        if isinstance(x, torch.Tensor):
            h.update(f"{x.dtype}{tuple(x.shape)}".encode())
            h.update(x.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                if k != "sha256":
                    h.update(repr(k).encode())
                    feed(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(f"{type(x).__name__}{len(x)}".encode())
            for item in x:
                feed(item)
        else:
            h.update(repr(x).encode())
    feed(obj)
    return h.hexdigest()


def load_checkpoint(path: Path) -> dict:
    """last.ckpt, or a TrainingError naming it when it cannot be read or its digest does not match."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # torch raises many types for a damaged file (zip, pickle, EOF, runtime)
        raise TrainingError(f"{path}: cannot read the checkpoint, it is truncated or damaged "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if "sha256" in ckpt and digest(ckpt) != ckpt["sha256"]:  # older checkpoints have none
        raise TrainingError(f"{path}: the checkpoint is damaged (its contents do not match the checksum saved "
                            "with them); resume from a copy, or start again with --overwrite")
    return ckpt


def restore(ckpt: dict, model: Bart, optimizer: torch.optim.Optimizer) -> None:
    """Put the weights, optimizer and random generators (this rank's) back where the checkpoint left them."""
    ours = model.state_dict()
    other = [f"{k} {tuple(v.shape)} (now {tuple(ours[k].shape) if k in ours else 'absent'})"
             for k, v in ckpt["model"].items() if k not in ours or ours[k].shape != v.shape]
    other += [f"{k} absent (now {tuple(v.shape)})" for k, v in ours.items() if k not in ckpt["model"]]
    if other:  # --resume-anyway across a change of the model itself
        raise TrainingError(f"last.ckpt holds a model of another shape ({'; '.join(other[:3])}"
                            f"{'; ...' if len(other) > 3 else ''}): no run can continue from it; start again "
                            "with --overwrite")
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    rank, others = distributed.rank(), ckpt.get("other_ranks_rng", [])
    if rank == 0 or rank <= len(others):  # a resume with more processes (--resume-anyway): fresh seeds
        set_rng_state(ckpt if rank == 0 else others[rank - 1])


def truncate_log(path: Path, step: int) -> None:
    """Keep the log lines up to `step`; a line cut short by a kill (no valid JSON) goes too."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            keep.append(line)
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in keep)))


def resume_from(out: Path, model: Bart, optimizer: torch.optim.Optimizer, settings: dict,
                allow_changed_settings: bool) -> dict:
    """Restore model, optimizer and random generators from OUT/last.ckpt, after checking that it
    was saved with these settings; drop what the interrupted run logged after it. Returns the
    checkpoint (its loop progress: step, best_loss, ...)."""
    ckpt = load_checkpoint(out / "last.ckpt")
    if "settings" not in ckpt:
        raise TrainingError(f"{out / 'last.ckpt'}: saved by an older minidq (no settings inside); "
                            "it cannot be resumed")
    changes = changed_settings(json.loads(ckpt["settings"]), settings)
    if changes and not allow_changed_settings:
        raise TrainingError(f"{out / 'last.ckpt'}: saved with other settings ({'; '.join(changes)}); "
                            "resume with the same ones, or tell it to go on anyway (--resume-anyway)")
    restore(ckpt, model, optimizer)
    truncate_log(out / "log.jsonl", ckpt["step"])
    return ckpt


def drop_previous(out: Path) -> None:
    """The new run has saved: the run it replaces (--overwrite) may go."""
    if (out / PREVIOUS).is_dir():
        shutil.rmtree(out / PREVIOUS)
