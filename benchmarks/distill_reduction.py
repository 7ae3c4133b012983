"""Which way of adding up the distillation terms: averaged over layers (minidq's "mean") or
summed as in the authors' code ("sum", and their "--weighted" preset)? Measured on the
*validation* split, never the test split, with the demo's budget; each against "mean" with its
paired bootstrap 95% interval:

    python benchmarks/distill_reduction.py --task summarization

minidq's default (DistillConfig.reduction) is whichever this favours; see the README.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from minidq.data import load_split
from minidq.demo import DemoConfig, run_task
from minidq.tasks import TASKS, Scorer
from minidq.distill import DistillConfig
from minidq.stats import paired_bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="summarization")
    parser.add_argument("--rows", default="DQ-2-2-8-6-6", help="comma-separated demo rows")
    parser.add_argument("--out", default="runs/distill_reduction")
    args = parser.parse_args()
    variants = {"mean": DistillConfig(), "sum": DistillConfig(reduction="sum"), "weighted": DistillConfig.weighted()}
    results = {}
    for name, distill in variants.items():
        cfg = DemoConfig(rows=tuple(args.rows.split(",")), distill=distill, split="valid", out=f"{args.out}/{name}",
                         shipped=False)
        summary = run_task(TASKS[args.task], cfg)
        results[name] = (summary["key"], summary["rows"][1:])
    print(f"\n{args.task}, validation split (first 200):")
    for name, (key, rows) in results.items():
        print(f"{name:>9}: " + ", ".join(f"{r['method']} {r['quant']} {r['layers']} {key} {r[key]:.1f}" for r in rows))
    task = TASKS[args.task]
    predictions = {name: [json.loads(line) for line in Path(f"{args.out}/{name}/{task.name}/predictions.jsonl").open()]
                   for name in variants}
    n = len(predictions["mean"])
    data_dir = ROOT / "data_samples" / task.name
    scorer = Scorer.for_examples(task, load_split(data_dir, "valid")[:n], data_dir, "valid")
    for row in args.rows.split(","):
        score = {name: scorer.per_index([line[row] for line in lines]) for name, lines in predictions.items()}
        for name in ("sum", "weighted"):
            print(f"{row}: {name} - mean = {paired_bootstrap(score[name], score['mean'], n)} (95% paired bootstrap)")


if __name__ == "__main__":
    main()
