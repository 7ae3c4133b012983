"""Time per training step at the paper's scale: BART-base shapes, random weights.

Two steps, each what `minidq train` / `minidq distill` runs per batch (forward, backward, gradient
clipping, AdamW), on one device:

    teacher     fine-tuning BART-base (6-6 layers, d_model 768, vocab 50265) on the task loss
    dq-2-2-8    DQ-BART: a 6-3 student made from that teacher, quantized 2-2-8, trained on the task
                loss plus the logits, hidden-state and attention distillation terms (teacher forward
                under no_grad included)

The weights are random (no checkpoint is read), which does not change the time of a step: the
shapes do. Prints the median and fastest step time and the tokens per second (source + target
tokens of the batch) for each step and precision, and the CPU time of the step (steadier than
the wall time on a shared machine), then one JSON line per row.

    python benchmarks/paper_scale_step.py                                 # CPU, fp32, batch 1 x 512 / 128
    python benchmarks/paper_scale_step.py --precision fp32 bf16 --repeats 5
    python benchmarks/paper_scale_step.py --device cuda --precision fp32 bf16 --batch 16 --source 1024
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


from minidq import Bart, BartConfig
from minidq.distill import DistillConfig, DistillLoss, make_student
from minidq.quant import QuantConfig, quantize
from minidq.train import TrainConfig, make_optimizer, task_loss

BART_BASE = dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                 decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
                 max_position_embeddings=1024)


def make_batch(batch: int, src_len: int, tgt_len: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Random ids, a few padded rows (as a length-grouped batch has), labels -100 where padded."""
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(4, BART_BASE["vocab_size"], (batch, src_len), generator=g)
    attention_mask = torch.ones_like(input_ids)
    labels = torch.randint(4, BART_BASE["vocab_size"], (batch, tgt_len), generator=g)
    for row in range(1, batch):
        input_ids[row, src_len - row * src_len // (8 * batch):] = 1
        attention_mask[row, src_len - row * src_len // (8 * batch):] = 0
        labels[row, tgt_len - row * tgt_len // (4 * batch):] = -100
    return {k: v.to(device) for k, v in
            {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}.items()}


def step_fn(model: Bart, loss_fn, batch: dict[str, torch.Tensor], precision: str, device: torch.device):
    """One optimizer step as minidq.train.train takes it; returns (wall, CPU) seconds. On a shared
    machine the CPU time of this process is the steadier figure (other processes stretch the wall time)."""
    optimizer = make_optimizer(model, TrainConfig())

    def step() -> tuple[float, float]:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        with torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16"):
            loss, _ = loss_fn(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, time.process_time() - cpu_start
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"))
    parser.add_argument("--steps", nargs="+", default=["teacher", "dq-2-2-8"], choices=("teacher", "dq-2-2-8"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--source", type=int, default=512, help="source tokens per example")
    parser.add_argument("--target", type=int, default=128, help="target tokens per example")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per row (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    teacher = Bart(BartConfig(**BART_BASE)).to(device)
    batch = make_batch(args.batch, args.source, args.target, device)
    tokens = int(batch["attention_mask"].sum() + (batch["labels"] != -100).sum())
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"torch {torch.__version__}, {where}; batch {args.batch}, source {args.source}, target {args.target} "
          f"({tokens} real tokens); BART-base shapes, random weights")
    print(f"{'step':<10} {'precision':<9} {'median (s)':>10} {'fastest (s)':>11} {'tokens/s':>9} {'CPU s (median)':>14}")
    rows = []
    for name in args.steps:
        for precision in args.precision:
            if name == "teacher":
                model, loss_fn = teacher.train(), task_loss
            else:
                model = quantize(make_student(teacher, 6, 3), QuantConfig(2, 2, 8)).to(device).train()
                loss_fn = DistillLoss(teacher, DistillConfig())  # puts the teacher in eval mode, frozen
            step = step_fn(model, loss_fn, batch, precision, device)
            step()  # warm-up: allocator, AdamW state, first-call overheads
            times, cpu = zip(*(step() for _ in range(args.repeats)))
            median = statistics.median(times)
            print(f"{name:<10} {precision:<9} {median:>10.2f} {min(times):>11.2f} {tokens / median:>9.1f} "
                  f"{statistics.median(cpu):>14.2f}", flush=True)
            rows.append({"step": name, "precision": precision, "device": where, "batch": args.batch,
                         "source": args.source, "target": args.target, "tokens": tokens,
                         "seconds": [round(t, 3) for t in times], "cpu_seconds": [round(t, 3) for t in cpu]})
            del model, step
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
