"""One training loop, read top to bottom: fine-tune a teacher, or train a quantized student.

    model, batches -> loss_fn(model, batch) -> backward -> clip -> AdamW step -> schedule
                   -> every eval_every steps: validation loss + ROUGE/BLEU, best and last checkpoints

Everything a long CPU run needs to survive an interruption lives in one file, `last.ckpt`,
written atomically (temp file + rename): model, optimizer and RNG states, the data position
and the partial sums of the next log line. `resume=True` continues from it and ends with
exactly the weights (and log) of an uninterrupted run, because the batch order is a pure
function of (seed, epoch) and everything random is restored. It refuses a checkpoint saved
with other settings (a changed learning rate, batch size, quantization, ...) unless told.

Three guards, because a run that goes wrong should say so, not exit 0:
  - an output folder that holds another run is refused (unless resume or overwrite);
  - divergence: a non-finite or exploding training loss, or a non-finite validation loss,
    stops the run before anything diverged is saved;
  - a model that ignores its input: each evaluation also computes the validation loss with
    the sources shuffled across the batch; a model that uses its input does much worse on
    it, so a gap near 0 after warm-up earns a warning (console and log).

The loss is computed in one replaceable place, `loss_fn(model, batch) -> (loss, terms)`: the
task loss here, the task loss plus distillation terms in minidq.distill.

At scale: `precision="bf16"` runs the forward under autocast (the matmuls in bfloat16; the
weights, optimizer and quantizers stay in float32), and under torchrun the same loop runs in N
processes on shards of each global batch (minidq.distributed; `distributed.*` calls do nothing
in one process).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from . import distributed
from .atomic import atomic_write, remove_stale, replace_folder
from .config import ConfigError
from .data import Batches, Example
from .errors import MinidqError, MinidqWarning
from .evaluate import evaluate
from .learned import learned_parameters
from .model import Bart

LossFn = Callable[[Bart, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]
# What a run writes into its output folder (student.packed: minidq distill); --overwrite removes them.
RUN_FILES = ("best", "last.ckpt", "log.jsonl", "train_config.json", "student.packed")
PREVIOUS = "previous"  # --overwrite: the replaced run's files wait here until the new run has saved
LOCK = ".lock"  # the id of the process training into the folder


@dataclass
class TrainConfig:
    out_dir: str = "runs/train"
    epochs: int = 10
    max_steps: int = 0            # optimizer steps; 0 = run all epochs
    batch_size: int = 32
    grad_accum: int = 1           # batches per optimizer step
    lr: float = 5e-4
    weight_decay: float = 0.01    # not applied to biases and LayerNorms
    warmup_steps: int | None = None  # linear warm-up, then linear decay to 0; None: 6% of the run
    max_grad_norm: float = 1.0
    eval_every: int = 500         # steps between evaluations and checkpoints
    eval_examples: int = 100      # validation examples to generate for ROUGE/BLEU (0 = loss only)
    eval_beams: int = 1
    eval_max_length: int = 64
    metric: str = "rouge"         # "rouge" (summaries) or "bleu" (translation)
    log_every: int = 20
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"       # "bf16": forward under autocast (bfloat16 matmuls; weights and quantizers fp32)
    divergence_factor: float = 100.0  # a loss this many times the first one (at least 1) has diverged
    min_input_gap: float = 0.02   # warn when shuffling the sources raises the validation loss less (nats)
    progress: bool = True         # a progress bar (off where several runs share one terminal)

    def __post_init__(self) -> None:
        """Refuse settings that would crash later (eval_every=0) or silently not train (max_steps=-5)."""
        at_least = {"epochs": 1, "batch_size": 1, "grad_accum": 1, "eval_every": 1, "log_every": 1, "eval_beams": 1,
                    "eval_max_length": 2, "max_steps": 0, "warmup_steps": 0, "eval_examples": 0}
        for name, low in at_least.items():
            value = getattr(self, name)
            if name == "warmup_steps" and value is None:
                continue
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}: {value!r} must be an integer of at least {low}")
        for name in ("lr", "max_grad_norm"):
            if not 0 < getattr(self, name) < math.inf:
                raise ConfigError(f"{name}: {getattr(self, name)!r} must be a positive number")
        if not self.divergence_factor > 1:
            raise ConfigError(f"divergence_factor: {self.divergence_factor!r} must be more than 1")
        if self.metric not in ("rouge", "bleu"):
            raise ConfigError(f"metric: {self.metric!r} is not 'rouge' or 'bleu'")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision: {self.precision!r} is not 'fp32' or 'bf16'")
        resolve_device(self.device)


class TrainingError(MinidqError, RuntimeError):
    """Training cannot go on (a diverged loss, an output folder or checkpoint of another run)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says which checkpoint is intact."""


def resolve_device(name: str) -> torch.device:
    """torch.device(name), or a ConfigError when this machine does not have it."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: {name!r} is not a device name (cpu, cuda, cuda:1, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r}, but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device: {name!r}, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device: {name!r}, but MPS is not available on this machine")
    return device


def task_loss(model: Bart, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of the next target token; padded label positions (-100) are ignored.
    Under torchrun: the mean over the tokens of the global batch (distributed.rank_weight)."""
    loss = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
    loss = loss * distributed.rank_weight((batch["labels"] != -100).sum())
    return loss, {"ce": loss.item()}


def make_optimizer(model: Bart, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; biases, LayerNorm gains and learned quantizer scales are left out of weight decay
    (shrinking them only hurts)."""
    decay, no_decay, learned = [], [], learned_parameters(model)
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or "norm" in name or name in learned else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def warmup_of(cfg: TrainConfig, total_steps: int) -> int:
    """cfg.warmup_steps, or when not given 6% of the run (BERT-style recipes use 6-10%): a fixed
    200 steps would be two thirds of a 300-step run."""
    return cfg.warmup_steps if cfg.warmup_steps is not None else round(0.06 * total_steps)


def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Linear warm-up over the warm-up steps, then linear decay to zero at total_steps."""
    warmup = warmup_of(cfg, total_steps)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup))


# ---------------------------------------------------------------- the output folder and last.ckpt

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
        "layer_map": model.layer_map,
        "run": extra or {},
    }
    if cfg.precision == "fp32":  # absent at the default, so checkpoints of earlier runs still resume
        del settings["train"]["precision"]
    if distributed.world_size() > 1:  # each process's random state is saved: resume with as many
        settings["world_size"] = distributed.world_size()
    return json.loads(json.dumps(settings))


def changed_settings(saved: dict, now: dict) -> list[str]:
    """'section.key: saved -> now' for each setting that differs."""
    changes = []
    for section in sorted(set(saved) | set(now)):
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


# ---------------------------------------------------------------- the loop

def train(
    model: Bart,
    tokenizer,
    train_batches: Batches,
    valid_batches: Batches,
    valid_examples: list[Example],
    cfg: TrainConfig,
    loss_fn: LossFn = task_loss,
    resume: bool = False,
    overwrite: bool = False,
    allow_changed_settings: bool = False,
    settings: dict | None = None,
    on_eval: Callable[[Bart, int], dict] | None = None,
) -> dict:
    """Train `model` in place; returns the last evaluation's figures. Writes into cfg.out_dir:
    last.ckpt (resume), best/ (HF checkpoint of the lowest validation loss), log.jsonl, train_config.json.

    resume: continue from last.ckpt; it must have been saved with the same settings (training,
    model and quantization configs, and `settings`, e.g. the command line) unless
    allow_changed_settings. overwrite: replace the run in a non-empty cfg.out_dir.
    on_eval(model, step): more figures for each evaluation's log line (e.g. a task's own score on
    validation), so a learning curve lives in log.jsonl and survives a resume like the rest.
    """
    out = Path(cfg.out_dir)
    rank, world = distributed.rank(), distributed.world_size()  # 0 and 1 unless run by torchrun
    main = rank == 0  # the process that logs, evaluates and saves
    steps_per_epoch = len(train_batches) // cfg.grad_accum
    if steps_per_epoch == 0:
        raise TrainingError(f"{len(train_batches)} batches per epoch is fewer than grad_accum={cfg.grad_accum}")
    last_batch = len(train_batches.pairs) % train_batches.batch_size
    if 0 < last_batch < world:
        raise TrainingError(f"the last batch of each epoch holds {last_batch} example(s), fewer than the {world} "
                            "processes that share it; choose another batch size")
    total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
    if main:
        prepare_out_dir(out, resume, overwrite)
    if tokenizer is not None:  # saved with the model: the pair is checked on loading
        model.config.tokenizer_sha256 = tokenizer.fingerprint()
    distributed.barrier()  # the other ranks read the folder only once rank 0 has prepared it
    device = distributed.local_device(resolve_device(cfg.device))
    model.to(device)
    net = distributed.wrap(model, device)  # forward and backward go through it: DDP, or the model itself
    optimizer = make_optimizer(model, cfg)

    # ---- where to start: fresh, or exactly where last.ckpt left off
    now = run_settings(model, cfg, settings)
    step, best_loss, first_loss = 0, math.inf, None
    loss_sum, terms_sum, logged_steps = 0.0, {}, 0  # the partial sums of the next log line
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed + rank)  # under torchrun each rank draws its own dropout masks
    if resume:
        ckpt = load_checkpoint(out / "last.ckpt")
        if "settings" not in ckpt:
            raise TrainingError(f"{out / 'last.ckpt'}: saved by an older minidq (no settings inside); "
                                "it cannot be resumed")
        changes = changed_settings(json.loads(ckpt["settings"]), now)
        if changes and not allow_changed_settings:
            raise TrainingError(f"{out / 'last.ckpt'}: saved with other settings ({'; '.join(changes)}); "
                                "resume with the same ones, or tell it to go on anyway (--resume-anyway)")
        restore(ckpt, model, optimizer)
        step, best_loss, first_loss = ckpt["step"], ckpt["best_loss"], ckpt["first_loss"]
        loss_sum, terms_sum, logged_steps = ckpt["loss_sum"], dict(ckpt["terms_sum"]), ckpt["logged_steps"]
        _truncate_log(out / "log.jsonl", step)  # drop what the interrupted run logged after its checkpoint
    if main:
        (out / "train_config.json").write_text(json.dumps({**asdict(cfg), "settings": now}, indent=2) + "\n")
    saved_step = step

    def diverged(what: str) -> TrainingError:
        saved = f"{out / 'last.ckpt'} keeps step {saved_step}, before it" if saved_step else "nothing was saved"
        return TrainingError(f"step {step}: training diverged ({what}); {saved}. "
                             f"Try a lower learning rate than {cfg.lr:g}")

    log = open(out / "log.jsonl", "a") if main else open(os.devnull, "w")
    bar = tqdm(total=total_steps, initial=step, desc="train", dynamic_ncols=True, disable=not (main and cfg.progress))
    say = bar.write if main else lambda *args, **kwargs: None
    running, last_eval, t0 = None, {}, time.time()
    model.train()
    try:
        while step < total_steps:
            # ---- the data position follows from `step`: epoch, then the batch within it
            epoch, step_in_epoch = divmod(step, steps_per_epoch)
            batches = train_batches.epoch(epoch, skip=step_in_epoch * cfg.grad_accum, rank=rank, world_size=world)
            for _ in range(step_in_epoch, min(steps_per_epoch, step_in_epoch + total_steps - step)):
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, cfg, total_steps)
                total = 0.0
                for micro in range(cfg.grad_accum):  # one optimizer step = grad_accum batches
                    batch = {k: v.to(device) for k, v in next(batches).items()}
                    with distributed.no_sync_unless(net, last=micro == cfg.grad_accum - 1):
                        with torch.autocast(device.type, torch.bfloat16, enabled=cfg.precision == "bf16"):
                            loss, terms = loss_fn(net, batch)
                        terms = distributed.mean_over_ranks({"loss": loss.item(), **terms})  # the global batch's
                        value = terms.pop("loss")
                        first_loss = value if first_loss is None else first_loss
                        if not math.isfinite(value) or value > cfg.divergence_factor * max(first_loss, 1.0):
                            raise diverged(f"training loss {value:.4g}, the first was {first_loss:.4g}; terms {terms}")
                        (loss / cfg.grad_accum).backward()
                    total += value / cfg.grad_accum
                    for k, v in terms.items():
                        terms_sum[k] = terms_sum.get(k, 0.0) + v / cfg.grad_accum
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                bar.update(1)

                loss_sum += total  # logged figures are means over the steps since the last log line
                logged_steps += 1
                running = total if running is None else 0.95 * running + 0.05 * total
                bar.set_postfix(loss=f"{running:.3f}")
                if step % cfg.log_every == 0:
                    record = {"step": step, "epoch": epoch, "lr": lr_at(step - 1, cfg, total_steps),
                              "loss": loss_sum / logged_steps, "grad_norm": grad_norm.item(),
                              **{k: v / logged_steps for k, v in terms_sum.items()},
                              "elapsed_s": time.time() - t0}
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    loss_sum, terms_sum, logged_steps = 0.0, {}, 0

                if step % cfg.eval_every == 0 or step == total_steps:
                    last_eval = distributed.on_main(  # rank 0 evaluates; every rank learns the figures
                        lambda: {**evaluate_during_training(model, tokenizer, valid_batches, valid_examples, cfg),
                                 **(on_eval(model, step) if on_eval else {})})
                    if not math.isfinite(last_eval["val_loss"]):
                        raise diverged(f"validation loss {last_eval['val_loss']}")
                    last_eval["step"] = step
                    log.write(json.dumps(last_eval) + "\n")
                    say(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in last_eval.items() if k != "step"))
                    gap = last_eval.get("input_gap")
                    if step > warmup_of(cfg, total_steps) and gap is not None and gap < cfg.min_input_gap:
                        warning = (f"the validation loss barely depends on the source: shuffling the sources "
                                   f"across each batch raises it by {gap:.4f} only; the model may be ignoring "
                                   f"its input (try a lower learning rate than {cfg.lr:g})")
                        log.write(json.dumps({"step": step, "warning": warning}) + "\n")
                        warnings.warn(MinidqWarning(f"step {step}: {warning}"))
                    log.flush()
                    if last_eval["val_loss"] < best_loss:
                        best_loss = last_eval["val_loss"]
                        if main:  # weights and tokenizer together, replacing the old best/ in one step
                            replace_folder(out / "best", lambda tmp: (model.save_pretrained(tmp),
                                                                      tokenizer.save_pretrained(tmp)))
                    save_checkpoint(out / "last.ckpt", model, optimizer, {
                        "step": step, "best_loss": best_loss, "first_loss": first_loss,
                        "loss_sum": loss_sum, "terms_sum": terms_sum, "logged_steps": logged_steps,
                        "settings": json.dumps(now)})
                    if main and not saved_step and (out / PREVIOUS).is_dir():  # the replaced run may go now
                        shutil.rmtree(out / PREVIOUS)
                    saved_step = step
                    model.train()
    except BaseException as e:
        if main and not saved_step and not resume:
            log.close()
            give_back_previous(out)
        if not isinstance(e, KeyboardInterrupt):
            raise
        saved = f"{out / 'last.ckpt'} holds step {saved_step}; --resume continues from it" if saved_step \
            else "no checkpoint was saved yet"
        raise Interrupted(f"stopped at step {step}; {saved}") from None
    finally:
        bar.close()
        log.close()
        if main:
            release_lock(out)
    model.eval()
    return last_eval


@torch.no_grad()
def evaluate_during_training(model: Bart, tokenizer, valid_batches: Batches, valid_examples: list[Example],
                             cfg: TrainConfig) -> dict:
    """Validation loss on the whole split; the same with the sources shuffled across each batch
    (input_gap: how much worse that is; near 0 for a model that ignores its input); and ROUGE/BLEU
    of generated outputs on the first eval_examples examples."""
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    paired, shuffled, paired_tokens = 0.0, 0.0, 0  # over the batches of 2 or more examples
    for batch in valid_batches.epoch(0):
        batch = {k: v.to(device) for k, v in batch.items()}
        n = (batch["labels"] != -100).sum().item()
        loss = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss.item()
        total, tokens = total + loss * n, tokens + n
        if len(batch["labels"]) > 1:  # each target against the next example's source
            ids, mask = batch["input_ids"].roll(1, 0), batch["attention_mask"].roll(1, 0)
            shuffled += model(ids, mask, labels=batch["labels"]).loss.item() * n
            paired, paired_tokens = paired + loss * n, paired_tokens + n
    figures = {"val_loss": total / tokens}
    if paired_tokens:
        figures["input_gap"] = (shuffled - paired) / paired_tokens
    if cfg.eval_examples:
        scores = evaluate(model, tokenizer, valid_examples[: cfg.eval_examples], metric=cfg.metric,
                          batch_size=cfg.batch_size, num_beams=cfg.eval_beams, max_length=cfg.eval_max_length,
                          progress=False)
        figures.update({k: v for k, v in scores.items() if k in ("rouge1", "rouge2", "rougeL", "bleu")})
    return figures


def _truncate_log(path: Path, step: int) -> None:
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
