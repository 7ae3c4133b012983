"""The three toy tasks of the paper's experiments, and how each is scored.

Each task's key metric: for summarization and QA the share of examples whose output states
every fact right (the references are one-to-many, so ROUGE against one drawn phrasing mixes up
phrasing with content; ROUGE is reported beside it); for translation BLEU (chrF beside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .data import read_facts
from .metrics import bleu, chrf, fact_figures, fact_scores, rouge, rouge_scores
from .stats import mean_of

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"  # the repo's shipped data and teachers


@dataclass(frozen=True)
class Task:
    name: str
    metric: str          # "facts" (content score, ROUGE beside it) or "bleu" (chrF beside it)
    max_length: int      # decoding limit, tokens
    max_target_length: int


TASKS = {"summarization": Task("summarization", "facts", 64, 64),
         "qa": Task("qa", "facts", 96, 96),
         "translation": Task("translation", "bleu", 48, 48)}


class Scorer:
    """Scores one task's test predictions: corpus figures for the table, and a per-index scorer
    of the key metric for the paired bootstrap."""

    def __init__(self, task: Task, sources: list[str], refs: list[str], facts):
        self.task, self.sources, self.refs, self.facts = task, sources, refs, facts

    @classmethod
    def for_examples(cls, task: Task, examples: list, data_dir: Path, split: str) -> "Scorer":
        """The scorer of the first len(examples) examples of data_dir/split.jsonl, with their facts."""
        return cls(task, [ex.source for ex in examples], [ex.target for ex in examples],
                   read_facts(data_dir / f"{split}.jsonl", len(examples)))

    def figures(self, preds: list[str]) -> dict:
        if self.task.metric == "bleu":
            return {"bleu": bleu(preds, self.refs), "chrf": chrf(preds, self.refs)}
        figures = {k: 100 * v for k, v in rouge(preds, self.refs).items() if k != "rougeLsum"}
        if self.facts:
            figures.update(fact_figures(preds, *self.facts))
        return figures

    def key(self) -> str:
        return "bleu" if self.task.metric == "bleu" else ("facts_exact" if self.facts else "rougeL")

    def per_example(self, preds: list[str]) -> list[float]:
        """Each example's key metric: facts right (100 or 0) on the fact tasks, else ROUGE-L F1.
        BLEU has none: it is a corpus figure, not a mean over sentences."""
        if self.task.metric == "bleu":
            raise ValueError("BLEU is a corpus figure: it has no per-example value (use per_index)")
        if self.facts:
            return [100.0 * fact_scores(p, f, d)[0] for p, f, d in zip(preds, *self.facts)]
        return [100 * rouge_scores(p, r)["rougeL"].f1 for p, r in zip(preds, self.refs)]

    def per_index(self, preds: list[str]):
        if self.task.metric == "bleu":
            return lambda idx: bleu([preds[i] for i in idx], [self.refs[i] for i in idx])
        return mean_of(self.per_example(preds))
