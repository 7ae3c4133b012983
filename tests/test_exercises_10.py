"""Lesson 10's checks reject plausible wrong answers and accept the solutions."""

import random

import pytest

from checks.lesson_10 import check_balanced_config, check_paired_interval
from solutions import lesson_10 as solutions

from minidq.distill import DistillConfig


def unpaired_interval(a, b, resamples=1000, seed=0):
    """Each model's examples drawn independently: ignores that both answered the same examples."""
    n, rng = len(a), random.Random(seed)
    means = sorted(sum(a[rng.randrange(n)] for _ in range(n)) / n - sum(b[rng.randrange(n)] for _ in range(n)) / n
                   for _ in range(resamples))
    return sum(a) / n - sum(b) / n, means[int(0.025 * resamples)], means[int(0.975 * resamples)]


def interval_90(a, b, resamples=1000, seed=0):
    """Paired, but the 5th to 95th percentile: a 90% interval, too narrow."""
    n, rng = len(a), random.Random(seed)
    d = [x - y for x, y in zip(a, b)]
    means = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return sum(d) / n, means[int(0.05 * resamples)], means[int(0.95 * resamples)]


def test_paired_interval():
    check_paired_interval(solutions.paired_interval)
    for wrong in (unpaired_interval, interval_90):
        with pytest.raises(AssertionError):
            check_paired_interval(wrong)


def test_balanced_config():
    check_balanced_config(solutions.balanced_config)
    wrong = [
        lambda n: DistillConfig(hidden=n["hidden"] / n["logits"], attention=n["attention"] / n["logits"]),  # inverted
        lambda n: DistillConfig(),                                                                          # unchanged
        lambda n: DistillConfig(ce=n["logits"] / n["ce"], hidden=n["logits"] / n["hidden"],                 # ce rescaled
                                attention=n["logits"] / n["attention"]),
    ]
    for answer in wrong:
        with pytest.raises(AssertionError):
            check_balanced_config(answer)
