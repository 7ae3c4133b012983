"""What a DQ training step costs against plain fine-tuning of the same student, and where it goes.

At one shape (the toy tasks' d_model 128, or BART-base's 768), four steps on the same batches,
each forward + backward + AdamW on a 6-6 student (random weights for BART-base; the shipped
summarization teacher for the toy shape):

    fp32        fine-tuning, task loss (the denominator of every ratio)
    qat         quantized 2-2-8, task loss: the price of the fake quantizers
    dq          quantized 2-2-8, task loss + distillation terms: the teacher's forward on top
    teacher     the teacher's forward alone, under no_grad (what distillation adds, less its losses)

Rounds run the four side by side, in turn, so a busy machine slows them alike; the figure is
the median CPU time per step (steadier than wall time on a shared machine), and each ratio is
taken within a round. Then the top operators of one DQ step (torch.profiler).

    OMP_NUM_THREADS=1 python benchmarks/dq_step_cost.py                       # toy shape, batch 16
    OMP_NUM_THREADS=1 python benchmarks/dq_step_cost.py --shape base --batch 1 --source 128 --target 32
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from minidq import Bart, BartConfig, QuantConfig
from minidq.data import Batches, encode, load_split
from minidq.distill import DistillConfig, DistillLoss, make_student
from minidq.quant import quantize
from minidq.tasks import SAMPLES
from minidq.tokenizer import Tokenizer
from minidq.train import TrainConfig, make_optimizer, task_loss

BART_BASE = dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                 decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072, max_position_embeddings=1024)


def batches(args, vocab_size: int) -> list[dict[str, torch.Tensor]]:
    """Real summarization batches at the toy shape; random tokens of the given lengths at BART-base's."""
    if args.shape == "toy":
        tokenizer = Tokenizer.from_pretrained(SAMPLES / "summarization" / "teacher")
        pairs = encode(load_split(SAMPLES / "summarization", "train")[: args.batch * args.rounds], tokenizer,
                       256, 64).pairs
        return list(Batches(pairs, args.batch, tokenizer.pad_token_id, shuffle=True, seed=0).epoch(0))
    g = torch.Generator().manual_seed(0)
    return [{"input_ids": torch.randint(3, vocab_size, (args.batch, args.source), generator=g),
             "attention_mask": torch.ones(args.batch, args.source, dtype=torch.long),
             "labels": torch.randint(3, vocab_size, (args.batch, args.target), generator=g)}
            for _ in range(args.rounds)]


def step_fn(model: Bart, loss_fn):
    optimizer = make_optimizer(model, TrainConfig(lr=1e-5))
    model.train()

    def step(batch):
        loss, _ = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def cpu_seconds(fn, batch) -> float:
    start = time.process_time()
    fn(batch)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=("toy", "base"), default="toy")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--source", type=int, default=128, help="source tokens (base shape)")
    parser.add_argument("--target", type=int, default=32, help="target tokens (base shape)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    teacher = (Bart.from_pretrained(SAMPLES / "summarization" / "teacher") if args.shape == "toy"
               else Bart(BartConfig(**BART_BASE))).eval()
    data = batches(args, teacher.config.vocab_size)
    quant = QuantConfig.parse("2-2-8")
    dq_loss = DistillLoss(teacher, DistillConfig())
    steps = {"fp32": step_fn(make_student(teacher, 6, 6), task_loss),
             "qat": step_fn(quantize(make_student(teacher, 6, 6), quant), task_loss),
             "dq": step_fn(quantize(make_student(teacher, 6, 6), quant), dq_loss),
             "teacher": lambda batch: torch.no_grad()(teacher)(batch["input_ids"], batch["attention_mask"],
                                                              labels=batch["labels"], output_hidden_states=True,
                                                              output_attentions=True)}
    for name, step in steps.items():  # warm-up: first calls allocate
        step(data[0])
    times = {name: [] for name in steps}
    for batch in data[1:]:
        for name, step in steps.items():
            times[name].append(cpu_seconds(step, batch))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); shape {args.shape} (d_model "
          f"{teacher.config.d_model}), batch {args.batch}; {len(data) - 1} rounds; CPU seconds per step")
    print(f"{'step':<8} {'median s':>9} {'x fp32 (median of rounds)':>26}")
    for name in steps:
        ratio = statistics.median(a / b for a, b in zip(times[name], times["fp32"]))
        print(f"{name:<8} {statistics.median(times[name]):>9.3f} {ratio:>26.2f}")

    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        steps["dq"](data[1])
    print("\nOne DQ step, top operators by self CPU time:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
