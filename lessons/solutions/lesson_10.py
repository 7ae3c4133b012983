"""Solutions to the exercises of lesson 10 (DQ-BART: distillation and quantization, jointly)."""

import random

from minidq.distill import DistillConfig


def paired_interval(a: list, b: list, resamples: int = 1000, seed: int = 0) -> tuple:
    """(mean(a) - mean(b), low, high): the paired bootstrap 95% interval of the difference of two
    models' per-example scores on the same examples. Each resample draws n example indices with
    replacement (random.Random(seed)) and takes the mean difference over them, the SAME indices for
    both models; low and high are the 2.5th and 97.5th percentiles of the sorted resampled means."""
    n = len(a)
    d = [x - y for x, y in zip(a, b)]                      # per-example differences: the pairing
    rng = random.Random(seed)
    means = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return sum(d) / n, means[int(0.025 * resamples)], means[min(resamples - 1, int(0.975 * resamples))]


def balanced_config(norms: dict) -> DistillConfig:
    """A DistillConfig whose hidden and attention weights make each of those terms pull (gradient
    norm) as hard as the logits term at weight 1; ce and logits keep weight 1. norms: the gradient
    norm of each unweighted term {"ce", "logits", "hidden", "attention"}."""
    return DistillConfig(ce=1.0, logits=1.0, hidden=norms["logits"] / norms["hidden"],
                         attention=norms["logits"] / norms["attention"])
