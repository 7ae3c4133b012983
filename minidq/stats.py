"""Is a difference between two models real? The paired bootstrap (Koehn, 2004).

Both models answered the same test examples. Draw the examples with replacement many times,
score both models on each draw, and look at the spread of the difference: the 2.5th and 97.5th
percentiles bound a 95% interval. An interval that contains 0 means the test set cannot tell
the two apart. Pairing (the same draw for both) removes the variance that comes from some
examples being harder than others, which an unpaired comparison would count as noise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

Scorer = Callable[[Sequence[int]], float]  # a metric over the examples with these indices


@dataclass(frozen=True)
class Interval:
    diff: float  # score_a - score_b on the whole test set
    low: float   # 95% bootstrap interval of the difference
    high: float

    @property
    def significant(self) -> bool:
        """The interval excludes 0: the sign of the difference is not an accident of the sample."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.diff:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"


def mean_of(values: Sequence[float]) -> Scorer:
    """A scorer for per-example metrics (ROUGE F1, fact correctness): the mean over the indices."""
    return lambda idx: sum(values[i] for i in idx) / len(idx)


def paired_bootstrap(score_a: Scorer, score_b: Scorer, n: int, resamples: int = 1000, seed: int = 0) -> Interval:
    """score_a - score_b over n examples, with a 95% percentile interval from `resamples` draws.

    Scorers take index lists so that corpus-level metrics (BLEU, chrF) are recomputed on each
    draw, as they must be: a corpus BLEU is not the mean of sentence BLEUs."""
    rng = random.Random(seed)
    everything = range(n)
    diffs = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in everything]
        diffs.append(score_a(idx) - score_b(idx))
    diffs.sort()
    low, high = diffs[int(0.025 * resamples)], diffs[min(resamples - 1, int(0.975 * resamples))]
    return Interval(score_a(list(everything)) - score_b(list(everything)), low, high)
