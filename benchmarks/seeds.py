"""One comparison of two demo rows, rerun over several seeds: is a difference more than one draw?

One demo run is one draw: a student's result depends on its batch order and dropout. This
script trains both rows for each seed (the demo's budget), scores them on the same examples,
and prints each seed's difference a - b with its paired bootstrap interval, then the mean and
spread over seeds. The README's seed figures come from

    python benchmarks/seeds.py --task summarization --seeds 0 1 2      # DQ vs QAT, 2-2-8 6-6
    python benchmarks/seeds.py --task qa --seeds 1 2                   # the same on long-form QA
    python benchmarks/seeds.py --a DQ+LSQ-2-2-8-6-3 --b DQ-2-2-8-6-3 --variants --test-examples 100

`--variants` trains on the first steps x batch training examples, as `demo --variants` does.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from minidq.data import load_split
from minidq.demo import DemoConfig, run_task
from minidq.tasks import TASKS, Scorer
from minidq.stats import paired_bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="summarization")
    parser.add_argument("--a", default="DQ-2-2-8-6-6", help="the row whose gain is claimed")
    parser.add_argument("--b", default="QAT-2-2-8-6-6", help="the row it is compared with")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--split", default="test", help="valid while tuning, test to report")
    parser.add_argument("--test-examples", type=int, default=200)
    parser.add_argument("--variants", action="store_true", help="train on the first steps x batch examples")
    parser.add_argument("--out", default="runs/seeds")
    args = parser.parse_args()
    task = TASKS[args.task]
    results = []
    for seed in args.seeds:
        cfg = DemoConfig(rows=(args.a, args.b), seed=seed, split=args.split, test_examples=args.test_examples,
                         shipped=False, out=f"{args.out}/seed{seed}")
        if args.variants:
            cfg.train_examples = cfg.steps * cfg.batch_size
        summary = run_task(task, cfg)
        lines = [json.loads(line) for line in (Path(cfg.out) / task.name / "predictions.jsonl").open()]
        data_dir = ROOT / "data_samples" / task.name
        scorer = Scorer.for_examples(task, load_split(data_dir, args.split)[: len(lines)], data_dir, args.split)
        a, b = (scorer.per_index([line[name] for line in lines]) for name in (args.a, args.b))
        interval = paired_bootstrap(a, b, len(lines), cfg.bootstrap, seed)
        by_name = {f"{r['method']}-{r['quant']}-{r['layers']}": r for r in summary["rows"]}
        results.append((seed, by_name[args.a][summary["key"]], by_name[args.b][summary["key"]], interval))
    print(f"\n{args.task}, {args.split} split (first {args.test_examples}), key metric {summary['key']}: "
          f"{args.a} - {args.b}")
    print(f"| seed | {args.b} | {args.a} | difference [95% paired bootstrap] |\n|---|---|---|---|")
    for seed, score_a, score_b, iv in results:
        print(f"| {seed} | {score_b:.1f} | {score_a:.1f} | {iv} |")
    diffs = [iv.diff for *_, iv in results]
    spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    print(f"\nmean difference over {len(diffs)} seeds: {statistics.mean(diffs):+.2f} (standard deviation {spread:.2f}); "
          f"intervals excluding 0: {sum(iv.significant for *_, iv in results)} of {len(results)}")


if __name__ == "__main__":
    main()
