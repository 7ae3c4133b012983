"""One training loop, read top to bottom: fine-tune a teacher, or train a quantized student.

    model, batches -> loss_fn(model, batch) -> backward -> clip -> AdamW step -> schedule
                   -> every eval_every steps: validation loss + ROUGE/BLEU, best and last checkpoints

Everything a long CPU run needs to survive an interruption lives in one file, `last.ckpt`
(minidq.runs: the run folder, its checkpoint and lock): `resume=True` continues from it and ends
with exactly the weights (and log) of an uninterrupted run.

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

import json
import math
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from tqdm import tqdm

from . import distributed
from .atomic import replace_folder
from .config import ConfigError
from .data import Batches, Example
from .errors import MinidqWarning
from .evaluate import evaluate
from .learned import learned_parameters
from .model import Bart
from .runs import (TrainingError, drop_previous, give_back_previous, prepare_out_dir, release_lock, resume_from,
                   run_settings, save_checkpoint)

LossFn = Callable[[Bart, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


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
    eval_beams: int = 1           # beams for those examples (greedy: cheap, enough to rank checkpoints)
    eval_max_length: int = 64     # longest generated output (the CLI sets the checkpoint's max_length)
    metric: str = "rouge"         # "rouge" (summaries) or "bleu" (translation)
    log_every: int = 20
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"       # "bf16": forward under autocast (bfloat16 matmuls; weights and quantizers fp32)
    divergence_factor: float = 100.0  # a loss this many times the first one (at least 1) has diverged
    min_input_gap: float = 0.02   # warn when shuffling the sources raises the validation loss less (nats)
    progress: bool = True         # a progress bar, drawn on a terminal only (off where several runs share one)

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


# ---------------------------------------------------------------- the loop

@dataclass
class Progress:
    """What the loop carries from step to step; all but the last two fields go into last.ckpt."""
    step: int = 0
    best_loss: float = math.inf
    first_loss: float | None = None
    loss_sum: float = 0.0        # the partial sums of the next log line
    terms_sum: dict = field(default_factory=dict)
    logged_steps: int = 0
    saved_step: int = 0          # the step last.ckpt holds (0: none yet)
    running: float | None = None  # the smoothed loss the progress bar shows

    def state(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("saved_step", "running")}

    def add(self, loss: float, terms: dict[str, float]) -> None:
        """One optimizer step's loss and terms into the sums of the next log line."""
        self.step += 1
        self.loss_sum += loss
        self.logged_steps += 1
        for k, v in terms.items():
            self.terms_sum[k] = self.terms_sum.get(k, 0.0) + v
        self.running = loss if self.running is None else 0.95 * self.running + 0.05 * loss

    def log_line(self, epoch: int, lr: float, grad_norm: float, elapsed: float) -> dict:
        """The means since the last log line; the sums start again."""
        n = self.logged_steps
        record = {"step": self.step, "epoch": epoch, "lr": lr, "loss": self.loss_sum / n, "grad_norm": grad_norm,
                  **{k: v / n for k, v in self.terms_sum.items()}, "elapsed_s": elapsed}
        self.loss_sum, self.terms_sum, self.logged_steps = 0.0, {}, 0
        return record


def train(model: Bart, tokenizer, train_batches: Batches, valid_batches: Batches, valid_examples: list[Example],
          cfg: TrainConfig, loss_fn: LossFn = task_loss, resume: bool = False, overwrite: bool = False,
          allow_changed_settings: bool = False, settings: dict | None = None,
          on_eval: Callable[[Bart, int], dict] | None = None) -> dict:
    """Train `model` in place; returns the last evaluation's figures. Writes into cfg.out_dir:
    last.ckpt (resume), best/ (HF checkpoint of the lowest validation loss), log.jsonl, train_config.json.

    resume: continue from last.ckpt; it must have been saved with the same settings (training,
    model and quantization configs, and `settings`, e.g. the command line) unless
    allow_changed_settings. overwrite: replace the run in a non-empty cfg.out_dir.
    on_eval(model, step): more figures for each evaluation's log line (e.g. a task's own score on
    validation), so a learning curve lives in log.jsonl and survives a resume like the rest.
    """
    out, rank, world = Path(cfg.out_dir), distributed.rank(), distributed.world_size()  # 0, 1 unless torchrun
    main = rank == 0  # the process that logs, evaluates and saves
    steps_per_epoch, total_steps = schedule(train_batches, cfg, world)
    if main:
        prepare_out_dir(out, resume, overwrite)
    if tokenizer is not None:  # saved with the model: the pair is checked on loading
        model.config.tokenizer_sha256 = tokenizer.fingerprint()
    distributed.barrier()  # the other ranks read the folder only once rank 0 has prepared it
    device = distributed.local_device(resolve_device(cfg.device))
    net = distributed.wrap(model.to(device), device)  # forward and backward go through it: DDP, or the model
    optimizer = make_optimizer(model, cfg)
    settings = run_settings(model, cfg, settings)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed + rank)  # under torchrun each rank draws its own dropout masks
    progress = resumed(out, model, optimizer, settings, allow_changed_settings) if resume else Progress()
    if main:
        (out / "train_config.json").write_text(json.dumps({**asdict(cfg), "settings": settings}, indent=2) + "\n")
    log = open(out / "log.jsonl", "a") if main else open(os.devnull, "w")
    bar = tqdm(total=total_steps, initial=progress.step, desc="train", dynamic_ncols=True,
               disable=None if main and cfg.progress else True)  # None: only on a terminal (tqdm's rule)
    last_eval, t0 = {}, time.time()
    model.train()
    try:
        while progress.step < total_steps:
            epoch, in_epoch = divmod(progress.step, steps_per_epoch)  # the data position follows from the step
            batches = train_batches.epoch(epoch, skip=in_epoch * cfg.grad_accum, rank=rank, world_size=world)
            for _ in range(in_epoch, min(steps_per_epoch, in_epoch + total_steps - progress.step)):
                lr = lr_at(progress.step, cfg, total_steps)
                grad_norm = train_step(net, model, optimizer, batches, loss_fn, lr, cfg, device, progress, out)
                bar.update(1)
                bar.set_postfix(loss=f"{progress.running:.3f}")
                if progress.step % cfg.log_every == 0:
                    write(log, progress.log_line(epoch, lr, grad_norm, time.time() - t0))
                if progress.step % cfg.eval_every == 0 or progress.step == total_steps:
                    last_eval = evaluate_and_checkpoint(model, tokenizer, optimizer, valid_batches, valid_examples,
                                                        cfg, progress, total_steps, settings, on_eval, log, bar)
    except BaseException as e:
        stopped(e, out, main, resume, progress, log)
    finally:
        bar.close()
        log.close()
        if main:
            release_lock(out)
    model.eval()
    return last_eval


def resumed(out: Path, model: Bart, optimizer: torch.optim.Optimizer, settings: dict,
            allow_changed_settings: bool) -> Progress:
    """The model, optimizer and random generators restored from last.ckpt; the loop's progress."""
    ckpt = resume_from(out, model, optimizer, settings, allow_changed_settings)
    return Progress(**{k: ckpt[k] for k in Progress().state()}, saved_step=ckpt["step"])


def schedule(train_batches: Batches, cfg: TrainConfig, world: int) -> tuple[int, int]:
    """(optimizer steps per epoch, steps in all), or a TrainingError for a batching that cannot work."""
    steps_per_epoch = len(train_batches) // cfg.grad_accum
    if steps_per_epoch == 0:
        raise TrainingError(f"{len(train_batches)} batches per epoch is fewer than grad_accum={cfg.grad_accum}")
    last_batch = len(train_batches.pairs) % train_batches.batch_size
    if 0 < last_batch < world:
        raise TrainingError(f"the last batch of each epoch holds {last_batch} example(s), fewer than the {world} "
                            "processes that share it; choose another batch size")
    return steps_per_epoch, cfg.max_steps or cfg.epochs * steps_per_epoch


def train_step(net, model: Bart, optimizer: torch.optim.Optimizer, batches: Iterator[dict], loss_fn: LossFn,
               lr: float, cfg: TrainConfig, device: torch.device, progress: Progress, out: Path) -> float:
    """One optimizer step over grad_accum batches: forward, divergence check, backward, clip, AdamW.
    Returns the gradient norm before clipping."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    total, step_terms = 0.0, {}
    for micro in range(cfg.grad_accum):
        batch = {k: v.to(device) for k, v in next(batches).items()}
        with distributed.no_sync_unless(net, last=micro == cfg.grad_accum - 1):
            with torch.autocast(device.type, torch.bfloat16, enabled=cfg.precision == "bf16"):
                loss, terms = loss_fn(net, batch)
            terms = distributed.mean_over_ranks({"loss": loss.item(), **terms})  # the global batch's
            value = terms.pop("loss")
            progress.first_loss = value if progress.first_loss is None else progress.first_loss
            if not math.isfinite(value) or value > cfg.divergence_factor * max(progress.first_loss, 1.0):
                raise diverged(f"training loss {value:.4g}, the first was {progress.first_loss:.4g}; terms {terms}",
                               progress, out, cfg)
            (loss / cfg.grad_accum).backward()
        total += value / cfg.grad_accum
        for k, v in terms.items():
            step_terms[k] = step_terms.get(k, 0.0) + v / cfg.grad_accum
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    progress.add(total, step_terms)
    return grad_norm.item()


def evaluate_and_checkpoint(model: Bart, tokenizer, optimizer: torch.optim.Optimizer, valid_batches: Batches,
                            valid_examples: list[Example], cfg: TrainConfig, progress: Progress, total_steps: int,
                            settings: dict, on_eval, log, bar) -> dict:
    """Validation figures into the log (with a warning for a model that ignores its input), best/
    when the validation loss is the lowest yet, then last.ckpt."""
    out, step, main = Path(cfg.out_dir), progress.step, distributed.is_main()
    figures = distributed.on_main(  # rank 0 evaluates; every rank learns the figures
        lambda: {**evaluate_during_training(model, tokenizer, valid_batches, valid_examples, cfg),
                 **(on_eval(model, step) if on_eval else {})})
    if not math.isfinite(figures["val_loss"]):
        raise diverged(f"validation loss {figures['val_loss']}", progress, out, cfg)
    figures["step"] = step
    log.write(json.dumps(figures) + "\n")
    if main:
        bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items() if k != "step"))
    gap = figures.get("input_gap")
    if step > warmup_of(cfg, total_steps) and gap is not None and gap < cfg.min_input_gap:
        warning = (f"the validation loss barely depends on the source: shuffling the sources across each batch "
                   f"raises it by {gap:.4f} only; the model may be ignoring its input (try a lower learning rate "
                   f"than {cfg.lr:g})")
        log.write(json.dumps({"step": step, "warning": warning}) + "\n")
        warnings.warn(MinidqWarning(f"step {step}: {warning}"))
    log.flush()
    if figures["val_loss"] < progress.best_loss:
        progress.best_loss = figures["val_loss"]
        if main:  # weights and tokenizer together, replacing the old best/ in one step
            replace_folder(out / "best", lambda tmp: (model.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))
    save_checkpoint(out / "last.ckpt", model, optimizer, {**progress.state(), "settings": json.dumps(settings)})
    if main and not progress.saved_step:
        drop_previous(out)
    progress.saved_step = step
    model.train()
    return figures


def diverged(what: str, progress: Progress, out: Path, cfg: TrainConfig) -> TrainingError:
    saved = (f"{out / 'last.ckpt'} keeps step {progress.saved_step}, before it" if progress.saved_step
             else "nothing was saved")
    return TrainingError(f"step {progress.step}: training diverged ({what}); {saved}. "
                         f"Try a lower learning rate than {cfg.lr:g}")


def stopped(e: BaseException, out: Path, main: bool, resumed: bool, progress: Progress, log) -> None:
    """A run that ends early: the run it replaced comes back if nothing was saved; Ctrl-C says
    which checkpoint is whole; anything else goes on up."""
    if main and not progress.saved_step and not resumed:
        log.close()
        give_back_previous(out)
    if not isinstance(e, KeyboardInterrupt):
        raise e
    saved = (f"{out / 'last.ckpt'} holds step {progress.saved_step}; --resume continues from it"
             if progress.saved_step else "no checkpoint was saved yet")
    raise Interrupted(f"stopped at step {progress.step}; {saved}") from None


def write(log, record: dict) -> None:
    log.write(json.dumps(record) + "\n")
    log.flush()


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
