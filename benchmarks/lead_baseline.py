"""Lead-N baseline: "summarize" by copying the first N words of the article.

Any model worth training must beat this; the gap between it and a trained model is what
"learned something" means on data_samples/summarization. The README's figure comes from

    python benchmarks/lead_baseline.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from minidq.data import load_split
from minidq.metrics import rouge


def lead(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data_samples" / "summarization")
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, nargs="+", default=[10, 15, 20, 30, 40])
    args = parser.parse_args()
    examples = load_split(args.data, args.split)
    refs = [ex.target for ex in examples]
    print(f"lead-N on {args.data.name}/{args.split} ({len(examples)} examples), F1 x 100")
    print(f"{'N words':>8} {'ROUGE-1':>8} {'ROUGE-2':>8} {'ROUGE-L':>8} {'ROUGE-Lsum':>10}")
    for n in args.n:
        scores = rouge([lead(ex.source, n) for ex in examples], refs)
        print(f"{n:>8} " + " ".join(f"{100 * scores[k]:>{w}.1f}" for k, w in
                                    (("rouge1", 8), ("rouge2", 8), ("rougeL", 8), ("rougeLsum", 10))))


if __name__ == "__main__":
    main()
