"""The paired bootstrap: intervals that contain 0 when models agree and exclude it when one is better."""

import random

from minidq.metrics import bleu
from minidq.stats import mean_of, paired_bootstrap


def test_identical_models_give_a_zero_interval():
    scores = [random.Random(0).random() for _ in range(50)]
    interval = paired_bootstrap(mean_of(scores), mean_of(scores), 50, resamples=200)
    assert (interval.diff, interval.low, interval.high) == (0.0, 0.0, 0.0) and not interval.significant


def test_a_consistent_gain_is_significant_and_noise_is_not():
    rng = random.Random(1)
    base = [rng.random() for _ in range(200)]
    better = [b + 0.05 for b in base]              # better on every example: tiny but certain
    noisy = [b + rng.gauss(0, 0.3) for b in base]  # no real gain
    gain = paired_bootstrap(mean_of(better), mean_of(base), 200, resamples=300)
    assert gain.significant and abs(gain.diff - 0.05) < 1e-9 and gain.low > 0
    noise = paired_bootstrap(mean_of(noisy), mean_of(base), 200, resamples=300)
    assert noise.low < noise.diff < noise.high
    assert not noise.significant or abs(noise.diff) > 0.03


def test_corpus_metrics_are_recomputed_per_draw():
    refs = ["the cat sat on the mat", "a dog ran home", "it is late now"] * 10
    preds = ["the cat sat on a mat", "a dog ran", "it is late now"] * 10
    score = lambda idx: bleu([preds[i] for i in idx], [refs[i] for i in idx])  # noqa: E731
    same = paired_bootstrap(score, score, len(refs), resamples=50)
    assert same.diff == 0.0
    perfect = lambda idx: bleu([refs[i] for i in idx], [refs[i] for i in idx])  # noqa: E731
    gap = paired_bootstrap(perfect, score, len(refs), resamples=50)
    assert gap.diff == 100.0 - bleu(preds, refs) and gap.low > 0
