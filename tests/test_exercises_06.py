"""Lesson 06's exercise checks accept the solutions and reject plausible wrong answers."""

from collections import Counter

import pytest
import torch

from checks.lesson_06 import check_input_gap, check_learning_rate, check_rouge_n_f1
from solutions import lesson_06 as solutions


def test_the_solutions_pass():
    check_rouge_n_f1(solutions.rouge_n_f1)
    check_learning_rate(solutions.learning_rate)
    check_input_gap(solutions.input_gap)


def _grams(tokens, n):
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def rouge_unclipped(pred, ref, n):
    """Counts every predicted n-gram found in the reference, however often it repeats."""
    p, r = _grams(pred, n), set(_grams(ref, n))
    hits = sum(g in r for g in p)
    if hits == 0:
        return 0.0
    precision, recall = hits / len(p), min(1.0, hits / len(_grams(ref, n)))
    return 2 * precision * recall / (precision + recall)


def rouge_sets(pred, ref, n):
    """Distinct n-grams only (sets instead of counts)."""
    p, r = set(_grams(pred, n)), set(_grams(ref, n))
    hits = len(p & r)
    if hits == 0:
        return 0.0
    return 2 * hits / (len(p) + len(r))


def rouge_recall(pred, ref, n):
    """Recall reported as the score."""
    p, r = Counter(_grams(pred, n)), Counter(_grams(ref, n))
    return sum((p & r).values()) / max(1, sum(r.values()))


@pytest.mark.parametrize("wrong", [rouge_unclipped, rouge_sets, rouge_recall])
def test_check_rouge_n_f1_rejects(wrong):
    with pytest.raises(AssertionError):
        check_rouge_n_f1(wrong)


def warmup_from_zero(step, lr, warmup_steps, total_steps):
    """Off by one: step 0 gets lr * 0."""
    if step < warmup_steps:
        return lr * step / warmup_steps
    return lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def decay_over_the_whole_run(step, lr, warmup_steps, total_steps):
    """The decay measured from step 0, not from the end of the warm-up."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    return lr * max(0.0, (total_steps - step) / total_steps)


def no_decay(step, lr, warmup_steps, total_steps):
    return lr * (step + 1) / warmup_steps if step < warmup_steps else lr


@pytest.mark.parametrize("wrong", [warmup_from_zero, decay_over_the_whole_run, no_decay])
def test_check_learning_rate_rejects(wrong):
    with pytest.raises(AssertionError):
        check_learning_rate(wrong)


def gap_sign_flipped(model, batch):
    return -solutions.input_gap(model, batch)


def gap_mask_not_rolled(model, batch):
    """The sources are rolled but their attention masks are not: padding is read as text."""
    model.eval()
    with torch.no_grad():
        paired = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
        shuffled = model(batch["input_ids"].roll(1, 0), batch["attention_mask"], labels=batch["labels"]).loss
    return (shuffled - paired).item()


def gap_labels_rolled(model, batch):
    """The targets rolled instead of the sources: other targets, other token counts."""
    model.eval()
    with torch.no_grad():
        paired = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
        shuffled = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"].roll(1, 0)).loss
    return (shuffled - paired).item()


def gap_with_dropout(model, batch):
    """Left in training mode: dropout makes both losses noisy."""
    model.train()
    torch.manual_seed(1)
    paired = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
    shuffled = model(batch["input_ids"].roll(1, 0), batch["attention_mask"].roll(1, 0), labels=batch["labels"]).loss
    return (shuffled - paired).item()


@pytest.mark.parametrize("wrong", [gap_sign_flipped, gap_mask_not_rolled, gap_labels_rolled, gap_with_dropout])
def test_check_input_gap_rejects(wrong):
    with pytest.raises(AssertionError):
        check_input_gap(wrong)
