"""One training loop, read top to bottom: fine-tune a teacher, or train a quantized student.

    model, batches -> loss_fn(model, batch) -> backward -> clip -> AdamW step -> schedule
                   -> every eval_every steps: validation loss + ROUGE/BLEU, best and last checkpoints

Everything a long CPU run needs to survive an interruption lives in one file, `last.ckpt`,
written atomically (temp file + rename): model, optimizer and RNG states and the data position.
`resume=True` continues from it and ends with exactly the weights of an uninterrupted run,
because the batch order is a pure function of (seed, epoch) and everything random is restored.

The loss is computed in one replaceable place, `loss_fn(model, batch) -> (loss, terms)`: the
task loss here, the task loss plus distillation terms in minidq.distill.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from .data import Batches, Example
from .evaluate import evaluate
from .model import Bart
from .pretrained import atomic_write
from .quant import quant_config_json

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
    warmup_steps: int = 200       # linear warm-up, then linear decay to 0
    max_grad_norm: float = 1.0
    eval_every: int = 500         # steps between evaluations and checkpoints
    eval_examples: int = 100      # validation examples to generate for ROUGE/BLEU (0 = loss only)
    eval_beams: int = 1
    eval_max_length: int = 64
    metric: str = "rouge"         # "rouge" (summaries) or "bleu" (translation)
    log_every: int = 20
    seed: int = 0
    device: str = "cpu"


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a checkpoint of another run)."""


def task_loss(model: Bart, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of the next target token; padded label positions (-100) are ignored."""
    loss = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
    return loss, {"ce": loss.item()}


def make_optimizer(model: Bart, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; biases and LayerNorm gains are left out of weight decay (shrinking them only hurts)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or "norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    """Linear warm-up over warmup_steps, then linear decay to zero at total_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr * max(0.0, (total_steps - step) / max(1, total_steps - cfg.warmup_steps))


def save_checkpoint(path: Path, model: Bart, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Everything needed to continue exactly: only tensors, numbers and strings (weights_only-safe)."""
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "config": json.dumps(model.config.to_dict()),
        "quant": quant_config_json(model),
        **state,
    }
    atomic_write(path, lambda tmp: torch.save(checkpoint, tmp))


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def train(
    model: Bart,
    tokenizer,
    train_batches: Batches,
    valid_batches: Batches,
    valid_examples: list[Example],
    cfg: TrainConfig,
    loss_fn: LossFn = task_loss,
    resume: bool = False,
) -> dict:
    """Train `model` in place; returns the last evaluation's figures. Writes into cfg.out_dir:
    last.ckpt (resume), best/ (HF checkpoint of the lowest validation loss), log.jsonl, train_config.json.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    steps_per_epoch = len(train_batches) // cfg.grad_accum
    total_steps = cfg.max_steps or cfg.epochs * steps_per_epoch
    if steps_per_epoch == 0:
        raise TrainingError(f"{len(train_batches)} batches per epoch is fewer than grad_accum={cfg.grad_accum}")

    # ---- where to start: fresh, or exactly where last.ckpt left off
    step, best_loss = 0, math.inf
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if resume and (out / "last.ckpt").is_file():
        ckpt = load_checkpoint(out / "last.ckpt")
        if json.loads(ckpt["config"]) != model.config.to_dict() or ckpt["quant"] != quant_config_json(model):
            raise TrainingError(f"{out / 'last.ckpt'}: saved for a different model or quantization; "
                                "use another out_dir")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        random.setstate(ckpt["python_rng"])
        step, best_loss = ckpt["step"], ckpt["best_loss"]
        _truncate_log(out / "log.jsonl", step)  # drop what the interrupted run logged after its checkpoint
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    tokenizer.save_pretrained(out / "best")

    log = open(out / "log.jsonl", "a")
    bar = tqdm(total=total_steps, initial=step, desc="train", dynamic_ncols=True)
    running, loss_sum, terms_sum, last_eval, t0 = None, 0.0, {}, {}, time.time()
    model.train()
    while step < total_steps:
        # ---- the data position follows from `step`: epoch, then the batch within it
        epoch, step_in_epoch = divmod(step, steps_per_epoch)
        batches = train_batches.epoch(epoch, skip=step_in_epoch * cfg.grad_accum)
        for _ in range(step_in_epoch, min(steps_per_epoch, step_in_epoch + total_steps - step)):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg, total_steps)
            total = 0.0
            for _ in range(cfg.grad_accum):  # one optimizer step = grad_accum batches
                batch = {k: v.to(device) for k, v in next(batches).items()}
                loss, terms = loss_fn(model, batch)
                if not torch.isfinite(loss):
                    raise TrainingError(f"step {step}: loss is {loss.item()} (terms {terms}); "
                                        f"try a lower learning rate, or resume from {out / 'last.ckpt'}")
                (loss / cfg.grad_accum).backward()
                total += loss.item() / cfg.grad_accum
                for k, v in terms.items():
                    terms_sum[k] = terms_sum.get(k, 0.0) + v / cfg.grad_accum
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)

            loss_sum += total  # logged figures are means over the last log_every steps
            running = total if running is None else 0.95 * running + 0.05 * total
            bar.set_postfix(loss=f"{running:.3f}")
            if step % cfg.log_every == 0:
                record = {"step": step, "epoch": epoch, "lr": lr_at(step - 1, cfg, total_steps),
                          "loss": loss_sum / cfg.log_every, "grad_norm": grad_norm.item(),
                          **{k: v / cfg.log_every for k, v in terms_sum.items()},
                          "elapsed_s": time.time() - t0}
                log.write(json.dumps(record) + "\n")
                log.flush()
                terms_sum, loss_sum = {}, 0.0

            if step % cfg.eval_every == 0 or step == total_steps:
                last_eval = evaluate_during_training(model, tokenizer, valid_batches, valid_examples, cfg)
                last_eval["step"] = step
                log.write(json.dumps(last_eval) + "\n")
                log.flush()
                bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in last_eval.items() if k != "step"))
                if last_eval["val_loss"] < best_loss:
                    best_loss = last_eval["val_loss"]
                    model.save_pretrained(out / "best")
                save_checkpoint(out / "last.ckpt", model, optimizer, {"step": step, "best_loss": best_loss})
                model.train()
    bar.close()
    log.close()
    model.eval()
    return last_eval


@torch.no_grad()
def evaluate_during_training(model: Bart, tokenizer, valid_batches: Batches, valid_examples: list[Example],
                             cfg: TrainConfig) -> dict:
    """Validation loss on the whole split, plus ROUGE/BLEU of generated outputs on its first examples."""
    model.eval()
    device = next(model.parameters()).device
    total, tokens = 0.0, 0
    for batch in valid_batches.epoch(0):
        batch = {k: v.to(device) for k, v in batch.items()}
        n = (batch["labels"] != -100).sum().item()
        total += model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss.item() * n
        tokens += n
    figures = {"val_loss": total / tokens}
    if cfg.eval_examples:
        scores = evaluate(model, tokenizer, valid_examples[: cfg.eval_examples], metric=cfg.metric,
                          batch_size=cfg.batch_size, num_beams=cfg.eval_beams, max_length=cfg.eval_max_length,
                          progress=False)
        figures.update({k: v for k, v in scores.items() if k in ("rouge1", "rouge2", "rougeL", "bleu")})
    return figures


def _truncate_log(path: Path, step: int) -> None:
    if path.is_file():
        keep = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in keep)))
