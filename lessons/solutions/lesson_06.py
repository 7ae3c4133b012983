"""Lesson 06 exercises: solutions. The notebook imports these so CI runs its checks; delete the
import in the notebook and write your own to do the exercise."""

from __future__ import annotations

from collections import Counter


def rouge_n_f1(pred: list[str], ref: list[str], n: int) -> float:
    """ROUGE-N F1 of two token lists: shared n-grams, each counted at most as often as it occurs
    on both sides (clipped); precision over the prediction's n-grams, recall over the reference's.
    An empty side scores 0."""
    def grams(tokens):
        return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))

    p, r = grams(pred), grams(ref)
    hits = sum((p & r).values())
    if hits == 0:
        return 0.0
    precision, recall = hits / sum(p.values()), hits / sum(r.values())
    return 2 * precision * recall / (precision + recall)


def learning_rate(step: int, lr: float, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to lr over warmup_steps (step 0 already gets lr / warmup_steps), then a
    linear decay that reaches 0 at total_steps."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    return lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def input_gap(model, batch) -> float:
    """How much worse the model predicts the labels when each target is paired with another
    example's source (the sources rolled by one across the batch, their attention masks with
    them): mean cross-entropy with the wrong sources minus with the right ones, in nats per token.
    Near 0 for a model that ignores its input. The model is evaluated without dropout."""
    import torch

    model.eval()
    with torch.no_grad():
        paired = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
        shuffled = model(batch["input_ids"].roll(1, 0), batch["attention_mask"].roll(1, 0),
                         labels=batch["labels"]).loss
    return (shuffled - paired).item()
