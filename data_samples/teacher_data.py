"""Write a teacher's training folder: the shipped splits, with the training split enlarged.

    python data_samples/teacher_data.py summarization runs/data_summarization --extra 30000

A 6-6 d128 BART learns to copy invented names letter by letter only after seeing many of them:
with the shipped 6,000 examples the summarization teacher misspelled a person's surname in
about 40% of test summaries. Extra examples come from the same generator with another seed,
so they use other invented names (the model must copy, it cannot memorise), and any whose
source occurs in the shipped splits is dropped. valid.jsonl and test.jsonl are the shipped
files, unchanged: the teacher is tuned on the same validation split and the students are
trained on the shipped 6,000 examples only.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from make_toy_data import HERE, SEED, make_qa, make_summarization, make_translation, write_jsonl

MAKERS = {"summarization": make_summarization, "qa": make_qa, "translation": make_translation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=sorted(MAKERS))
    parser.add_argument("out", type=Path)
    parser.add_argument("--extra", type=int, default=30000, help="training examples added")
    parser.add_argument("--seed", type=int, default=SEED + 1, help="the extra examples' seed")
    args = parser.parse_args()

    shipped = HERE / args.task
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("valid.jsonl", "test.jsonl"):
        shutil.copyfile(shipped / name, args.out / name)
    splits = {name: [json.loads(line) for line in (shipped / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
              for name in ("train", "valid", "test")}
    train = splits["train"]
    shipped_sources = {e["source"] for examples in splits.values() for e in examples}
    extra = [e for e in MAKERS[args.task](args.seed, (args.extra, 0, 0))["train"]
             if e["source"] not in shipped_sources]
    write_jsonl(args.out / "train.jsonl", train + extra)
    print(f"{args.out}/train.jsonl: {len(train)} shipped + {len(extra)} extra examples (seed {args.seed})")


if __name__ == "__main__":
    main()
