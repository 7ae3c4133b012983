"""How well a summarization model compares figures: facts right with and without a comparison,
and, where the reference says "up from 237", whether the output has the figure and the direction.

    python -m minidq evaluate --model M --data data_samples/summarization --split valid --limit 200 \
        --predictions runs/preds.txt
    python benchmarks/comparisons.py runs/preds.txt --split valid

The article gives the plan's figure and the year-before figure but never which is larger, so a
model that copies without comparing writes the right figure with a coin-flip direction.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from minidq.data import read_facts
from minidq.metrics import fact_scores, mentions

COMPARED = ("up from ", "down from ")


def percent(flags: list[bool]) -> float:
    return 100 * sum(flags) / max(len(flags), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("predictions", type=Path, help="one prediction per line, in split order")
    parser.add_argument("--data", type=Path, default=Path("data_samples/summarization"))
    parser.add_argument("--split", default="valid")
    args = parser.parse_args()

    preds = args.predictions.read_text(encoding="utf-8").splitlines()
    path = args.data / f"{args.split}.jsonl"
    read = read_facts(path, len(preds))
    if read is None:
        raise SystemExit(f"{path}: its lines have no `facts` field to score comparisons against")
    facts, distractors = read
    groups: dict[bool, list[bool]] = {True: [], False: []}
    figure = direction = 0
    for pred, fs, ds in zip(preds, facts, distractors):
        exact, _ = fact_scores(pred, fs, ds)
        compares = fs[-1].startswith(COMPARED)
        groups[compares].append(exact)
        if compares:
            before = fs[-1].split(" from ", 1)[1]
            figure += mentions(pred, f"from {before}")
            direction += mentions(pred, fs[-1])
    n = len(groups[True])
    if not n:
        raise SystemExit(f"no example of {args.split} compares figures")
    print(f"{len(preds)} examples: facts right {percent(groups[True] + groups[False]):.1f}%; "
          f"without a comparison ({len(groups[False])}) {percent(groups[False]):.1f}%; "
          f"with one ({n}) {percent(groups[True]):.1f}%")
    print(f"comparisons: figure right {100 * figure / n:.1f}%, direction right where the figure is "
          f"{100 * direction / max(figure, 1):.0f}% (chance 50%)")


if __name__ == "__main__":
    main()
