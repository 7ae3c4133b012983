"""Activation scales per tensor (DQ-BART) or per token: quality, speed, and batch dependence.

Post-training-quantizes a teacher at W-E-A bits with each `act_scale`, then on the first N
validation examples reports ROUGE (or BLEU) and examples/s with the teacher's decoding defaults,
and how many outputs change when each input is decoded alone instead of in its batch.

    python benchmarks/act_scale.py --teacher data_samples/summarization/teacher --data data_samples/summarization \\
        --quant 2-2-8 -n 64
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from minidq import Bart, QuantConfig, Tokenizer
from minidq.data import load_split
from minidq.evaluate import evaluate, predict
from minidq.quant import quantize


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default=str(ROOT / "data_samples/summarization/teacher"))
    p.add_argument("--data", default=str(ROOT / "data_samples/summarization"))
    p.add_argument("--quant", default="2-2-8")
    p.add_argument("-n", type=int, default=64, help="validation examples")
    p.add_argument("--metric", default="rouge", choices=["rouge", "bleu"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    teacher, tok = Bart.from_pretrained(args.teacher), Tokenizer.from_pretrained(args.teacher)
    examples = load_split(args.data, "valid")[: args.n]
    print(f"{args.teacher} PTQ {args.quant}, {len(examples)} validation examples of {args.data}, "
          f"batch {args.batch_size}, {args.threads} thread(s), the teacher's decoding defaults")
    name = "ROUGE-L" if args.metric == "rouge" else "BLEU"
    print(f"| act_scale | {name} | examples/s | outputs that change alone vs batched |")
    print("|---|---|---|---|")
    for act_scale in ("tensor", "token"):
        model = quantize(copy.deepcopy(teacher), QuantConfig.parse(args.quant, act_scale=act_scale)).eval()
        scores = evaluate(model, tok, examples, args.metric, args.batch_size, progress=False)
        alone = [predict(model, tok, [ex.source], 1, progress=False)[0] for ex in examples]
        changed = sum(a != b for a, b in zip(alone, scores["predictions"]))
        figure = scores["rougeL"] if args.metric == "rouge" else scores["bleu"]
        print(f"| {act_scale} | {figure:.2f} | {scores['examples_per_s']:.1f} | {changed} of {len(examples)} |",
              flush=True)


if __name__ == "__main__":
    main()
