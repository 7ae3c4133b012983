"""Sequence-level knowledge distillation (Kim & Rush, 2016): the student learns the teacher's outputs.

Word-level distillation (minidq.distill) matches the teacher's distribution at every position of
the *reference* target. Sequence-level distillation replaces the reference itself: the teacher
decodes each training source with beam search, and the student is trained with cross-entropy
on that output. The student then fits the one phrasing the teacher settled on instead of the
many a human reference set mixes (an easier target for a small or low-bit model), and learns
what beam search finds, which is what the teacher is scored on.

The two mix: training on the teacher's outputs *with* the word-level terms switches on nothing
new, since DistillLoss compares student and teacher on whatever decoder input the batch holds,
here the teacher's own output.

    python -m minidq seqkd --teacher T --data D --out seqkd.jsonl       # the teacher's outputs
    python -m minidq distill --teacher T --data D --seqkd-data seqkd.jsonl ...
"""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import atomic_write
from .data import DataError, Example
from .evaluate import predict
from .model import Bart


def teacher_outputs(teacher: Bart, tokenizer, examples: list[Example], batch_size: int = 32,
                    max_source_length: int = 256, progress: bool = True, **generate_kwargs) -> list[Example]:
    """Each example's source paired with the teacher's decoded output (its reference dropped)."""
    outputs = predict(teacher, tokenizer, [ex.source for ex in examples], batch_size, max_source_length,
                      progress=progress, **generate_kwargs)
    # An empty output would be an empty target, which read_jsonl refuses: keep the reference there.
    return [Example(ex.source, out or ex.target) for ex, out in zip(examples, outputs)]


def write_jsonl(path: str | Path, examples: list[Example]) -> None:
    """`{"source": ..., "target": ...}` lines, written atomically (a killed run leaves no half file)."""
    text = "".join(json.dumps({"source": ex.source, "target": ex.target}, ensure_ascii=False) + "\n"
                   for ex in examples)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def check_sources(distilled: list[Example], examples: list[Example], where: str | Path) -> None:
    """The teacher's outputs must be for these very sources, in order: another split or a
    shuffled file would silently pair sources with the wrong targets."""
    if len(distilled) < len(examples):
        raise DataError(f"{where}: {len(distilled)} teacher outputs for {len(examples)} training examples")
    for i, (a, b) in enumerate(zip(distilled, examples), start=1):
        if a.source != b.source:
            raise DataError(f"{where}:{i}: its source is not training example {i}'s (made from another split?)")
