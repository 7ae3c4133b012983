"""Which heads to prune, and in one round or several? Validation loss right after pruning.

For each task's shipped teacher (the DQ 6-6 student's starting point: its layers are the
teacher's), remove 25% and 50% of the attention heads (every module keeps at least one) chosen
(a) by Michel et al.'s importance in one round, (b) the same in several rounds that measure the
importances again on what is left (their iterative pruning), (c) at random, five draws; and
report the validation loss (first N validation examples) of each pruned model, before any
training: what each choice costs the model DQ then starts from. Importances are measured on 16
training batches of 16; nothing here looks at the test split.

    python benchmarks/head_pruning.py                       # three tasks, about 10 minutes on one core
    python benchmarks/head_pruning.py --tasks summarization --write benchmarks/results/head_pruning.md
"""

from __future__ import annotations

import argparse
import copy
import statistics
from itertools import islice

import torch

from minidq.data import load_split, make_batches
from minidq.heads import attention_paths, choose_heads, prune_least_important
from minidq.model import Bart
from minidq.tasks import SAMPLES, TASKS
from minidq.tokenizer import Tokenizer
from minidq.train import task_loss


@torch.no_grad()
def mean_loss(model: Bart, batches: list[dict]) -> float:
    """Token-weighted mean cross-entropy over the batches."""
    model.eval()
    total, tokens = 0.0, 0
    for b in batches:
        n = int((b["labels"] != -100).sum())
        total += task_loss(model, b)[0].item() * n
        tokens += n
    return total / tokens


def random_heads(model: Bart, fraction: float, generator: torch.Generator) -> dict[str, list[int]]:
    return choose_heads({p: torch.rand(m.num_heads, generator=generator) for p, m in attention_paths(model).items()},
                        fraction)


def one_task(task_name: str, args) -> list[str]:
    task, data = TASKS[task_name], SAMPLES / TASKS[task_name].name
    teacher = Bart.from_pretrained(data / "teacher")
    tok = Tokenizer.from_pretrained(data / "teacher")
    batches = {split: list(islice(make_batches(load_split(data, split)[:n], tok, 256, task.max_target_length, 16,
                                               tok.pad_token_id, shuffle=split == "train", seed=0, where=split)
                                  .epoch(0), n // 16))
               for split, n in (("train", 16 * args.batches), ("valid", args.valid_examples))}
    full = mean_loss(teacher, batches["valid"])
    lines = [f"| {task_name} | none | {full:.3f} | | |"]
    g = torch.Generator().manual_seed(0)
    for fraction in (0.25, 0.5):
        row = {}
        for steps in (1, args.rounds):
            model = copy.deepcopy(teacher)
            prune_least_important(model, batches["train"], task_loss, fraction, steps=steps)
            row[steps] = mean_loss(model, batches["valid"])
        randoms = []
        for _ in range(args.draws):
            model = copy.deepcopy(teacher)
            model.prune_heads(random_heads(model, fraction, g))
            randoms.append(mean_loss(model, batches["valid"]))
        lines.append(f"| {task_name} | {fraction:.0%} | {row[1]:.3f} | {row[args.rounds]:.3f} | "
                     f"{statistics.median(randoms):.3f} ({min(randoms):.3f}-{max(randoms):.3f}) |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="summarization,qa,translation")
    p.add_argument("--batches", type=int, default=16, help="training batches of 16 for the importances")
    p.add_argument("--valid-examples", type=int, default=192)
    p.add_argument("--rounds", type=int, default=5, help="rounds of the iterative choice")
    p.add_argument("--draws", type=int, default=5, help="random choices per fraction")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--write", help="write the table here as well")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    lines = ["Validation loss (first {v} validation examples) of each task's teacher with heads removed, before "
             "any training; importances on {b} training batches of 16; random: median (range) of {d} draws."
             .format(v=args.valid_examples, b=args.batches, d=args.draws), "",
             f"| task | heads removed | by importance, one round | by importance, {args.rounds} rounds | at random |",
             "|---|---|---|---|---|"]
    for task in args.tasks.split(","):
        lines += one_task(task, args)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "w") as f:
            f.write("# Head pruning: which heads, one round or several (benchmarks/head_pruning.py)\n\n"
                    f"    python benchmarks/head_pruning.py --write {args.write}\n\n" + text)


if __name__ == "__main__":
    main()
