"""Beyond the paper: what `python -m minidq demo --variants` compares with plain DQ.

Each variant changes one thing in DQ-BART's recipe and keeps the rest (student, bits, layers,
steps, batch, learning rate, training examples), so its row against plain DQ's is a fair pair:

    SeqKD       sequence-level KD alone (Kim & Rush 2016, minidq.seqkd): the task loss on the
                teacher's beam outputs instead of the references, no word-level terms
    DQ+SeqKD    DQ's task and distillation losses, on the teacher's beam outputs
    DQ+LSQ      learned step sizes for weights, embeddings and activations (LSQ, minidq.learned)
    DQ+elastic  learned activation scale and offset (TBT's elastic quantizer); weights as DQ
    DQ+KL       the logits term as KL at temperature 2 (Hinton et al.) instead of DQ-BART's MSE
    DQ+heads25  25% of the student's attention heads pruned before DQ (minidq.heads: Michel et
                al.'s importance on 16 training batches); the attention term on the kept heads
    DQ+heads50  the same with 50%

A variant claims to beat plain DQ, except pruning, which claims to cost little: to be about as
good as plain DQ with fewer heads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from .data import Example, read_jsonl
from .seqkd import check_sources, teacher_outputs, write_jsonl


@dataclass(frozen=True)
class Variant:
    quant: dict = field(default_factory=dict)    # QuantConfig options on top of the row's W-E-A bits
    distill: dict | None = field(default_factory=dict)  # DistillConfig changes; None: the task loss alone
    seqkd: bool = False                          # train on the teacher's outputs (sequence-level KD)
    prune_heads: float = 0.0                     # fraction of attention heads removed before training
    claim: str = "better"                        # against plain DQ: "better", or "close" (costs little)


VARIANTS = {
    "SeqKD": Variant(distill=None, seqkd=True),
    "DQ+SeqKD": Variant(seqkd=True),
    "DQ+LSQ": Variant(quant=dict(weight_method="lsq", act_method="lsq")),
    "DQ+elastic": Variant(quant=dict(act_method="elastic")),
    "DQ+KL": Variant(distill=dict(logits_kind="kl", temperature=2.0)),
    "DQ+heads25": Variant(prune_heads=0.25, claim="close"),
    "DQ+heads50": Variant(prune_heads=0.5, claim="close"),
}
PRUNE_BATCHES = 16  # training batches the head importance is measured on
SETTINGS = (("2-2-8", "6-6"), ("2-2-8", "6-3"))  # the paper's main setting, and one where DQ falls off


def seqkd_path(out: Path, teacher_dir: Path) -> Path:
    """Where a demo keeps its teacher's outputs: named by a hash of the teacher's weights, so a
    replaced teacher decodes afresh instead of reusing its predecessor's outputs."""
    digest = hashlib.sha256((teacher_dir / "model.safetensors").read_bytes()).hexdigest()[:12]
    return out / f"seqkd_train.{digest}.jsonl"


def seqkd_examples(teacher, tokenizer, examples: list[Example], path: Path, max_source_length: int,
                   **generate_kwargs) -> list[Example]:
    """The teacher's outputs for these training examples: read from `path` when it holds them
    (`python -m minidq seqkd ... --limit N` writes such a file), else decoded and written there."""
    if not path.is_file():
        write_jsonl(path, teacher_outputs(teacher, tokenizer, examples, max_source_length=max_source_length,
                                          progress=False, **generate_kwargs))
    distilled = read_jsonl(path)
    check_sources(distilled, examples, path)
    return distilled[: len(examples)]
