"""The key comparison of the paper, DQ vs QAT at 2-2-8 6-6, rerun over several seeds.

One demo run is one draw: a student's result depends on its batch order and dropout. This
script trains both rows for each seed (same budget as `make demo`), scores them on the test
split, and prints each seed's difference with its paired bootstrap interval, then the mean and
spread over seeds. The README's seed figures come from

    python benchmarks/dq_vs_qat_seeds.py --task summarization --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minidq.demo import TASKS, DemoConfig, run_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="summarization")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--split", default="test", help="valid while tuning, test to report")
    parser.add_argument("--out", default="runs/dq_vs_qat")
    args = parser.parse_args()
    diffs, rows = [], []
    for seed in args.seeds:
        cfg = DemoConfig(rows=("QAT-2-2-8-6-6", "DQ-2-2-8-6-6"), seed=seed, split=args.split,
                         out=f"{args.out}/seed{seed}")
        summary = run_task(TASKS[args.task], cfg)
        by_name = {f"{r['method']}-{r['quant']}-{r['layers']}": r for r in summary["rows"]}
        claim = next(c for c in summary["claims"] if c["b"] == "QAT-2-2-8-6-6")
        key = summary["key"]
        rows.append((seed, by_name["QAT-2-2-8-6-6"][key], by_name["DQ-2-2-8-6-6"][key], claim))
        diffs.append(claim["diff"])
    print(f"\n{args.task}, {args.split} split, key metric {key}: DQ 2-2-8 6-6 - QAT 2-2-8 6-6")
    print("| seed | QAT | DQ | DQ - QAT [95% paired bootstrap] |\n|---|---|---|---|")
    for seed, qat, dq, c in rows:
        print(f"| {seed} | {qat:.1f} | {dq:.1f} | {c['diff']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}] |")
    spread = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    print(f"\nmean difference over {len(diffs)} seeds: {statistics.mean(diffs):+.2f} (standard deviation {spread:.2f})")


if __name__ == "__main__":
    main()
