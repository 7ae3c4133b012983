"""The demo's variants rows, run side by side, merged into one table with the demo's own claims.

`python -m minidq demo --variants --task summarization` runs plain DQ and every variant
(minidq.variants) in one process. On a shared machine the rows can instead run in parallel, one
process each, on the same test examples:

    python -m minidq demo --variants --task summarization --test-examples 100 \\
        --rows DQ+LSQ-2-2-8-6-3 --out runs/variants/rows/DQ+LSQ-2-2-8-6-3        # one per row

and this script merges what they wrote (results.json, predictions.jsonl) into one results.md /
results.json with every variant's paired bootstrap claim against plain DQ (minidq.demo's
Scorer, check_claims and markdown, unchanged):

    python benchmarks/variants.py runs/variants/rows/* --out benchmarks/results/variants/summarization
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from minidq.data import load_split, read_facts  # noqa: E402
from minidq.demo import ALL_ROWS, SAMPLES, TASKS, Scorer, check_claims, markdown  # noqa: E402


def merge(runs: list[Path]) -> tuple[dict, dict[str, list[str]]]:
    """One summary (the demo's results.json shape) and the predictions of every row."""
    summaries = [json.loads((run / "results.json").read_text()) for run in runs]
    first = summaries[0]
    for run, s in zip(runs, summaries):  # the rows must be comparable: same task, examples, budget
        for key in ("tasks", "split", "test_examples", "train_examples", "steps", "batch_size", "lr", "seed",
                    "teacher"):
            if s["config"].get(key) != first["config"].get(key):
                raise SystemExit(f"{run}: {key} = {s['config'].get(key)!r}, but {runs[0]} has "
                                 f"{first['config'].get(key)!r}: not the same experiment")
        if s["rows"][0] != first["rows"][0]:
            raise SystemExit(f"{run}: the teacher row differs from {runs[0]}'s (another teacher?)")
    rows, predictions = [first["rows"][0]], {}
    for run, s in zip(runs, summaries):
        lines = [json.loads(line) for line in (run / "predictions.jsonl").open(encoding="utf-8")]
        for r in s["rows"][1:]:
            name = f"{r['method']}-{r['quant']}-{r['layers']}"
            if name not in predictions:
                rows.append(r)
                predictions[name] = [line[name] for line in lines]
        predictions.setdefault("teacher", [line["teacher"] for line in lines])
    order = [r.name for r in ALL_ROWS]  # the demo's row order, whatever order the runs came in
    rows[1:] = sorted(rows[1:], key=lambda r: order.index(f"{r['method']}-{r['quant']}-{r['layers']}"))
    return {**first, "rows": rows}, predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="the --out folders of the per-row demo runs")
    parser.add_argument("--task", choices=sorted(TASKS), default="summarization")
    parser.add_argument("--out", type=Path, required=True, help="folder for the merged results.md / results.json")
    args = parser.parse_args()
    summary, predictions = merge([run / args.task for run in args.runs])
    cfg = summary["config"]
    data_dir = Path(cfg["data"] or SAMPLES / args.task)
    test = load_split(data_dir, cfg["split"])[: cfg["test_examples"] or None]
    scorer = Scorer(TASKS[args.task], [ex.source for ex in test], [ex.target for ex in test],
                    read_facts(data_dir / f"{cfg['split']}.jsonl", len(test)))
    layers = summary["rows"][0]["layers"]
    summary["claims"] = check_claims(predictions, scorer, len(test), cfg["bootstrap"], cfg["seed"], layers)
    summary["caption"] = summary["caption"].split(" This table took")[0] + \
        f" Rows merged from {len(args.runs)} runs of `demo --variants` side by side (benchmarks/variants.py)."
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
