"""Lesson 05's exercise checks: BART's token deletion and document rotation."""

from __future__ import annotations

import numpy as np


def is_subsequence(short: list[int], long: list[int]) -> bool:
    it = iter(long)
    return all(t in it for t in short)          # `in` advances the iterator: order is respected


def check_token_deletion(token_deletion) -> None:
    """token_deletion(tokens, rng, ratio=0.15): round(ratio * len(tokens)) tokens removed, the
    positions drawn at random with `rng` (every position equally likely), the rest kept in order."""
    rng = np.random.default_rng(3)
    for n in range(1, 80):
        original = list(range(100, 100 + n))     # distinct tokens, so positions can be traced
        out = token_deletion(original, rng)
        assert len(out) == n - round(0.15 * n), f"n={n}: {n - len(out)} deleted, expected round(0.15 * {n}) = {round(0.15 * n)}"
        assert is_subsequence(out, original), f"n={n}: the kept tokens must stay in their order"
    assert len(token_deletion(list(range(20)), rng, ratio=0.5)) == 10, "the ratio argument is used"
    # where the deletions fall: 3 of 20 positions, 2,000 times; every position about 15% of the time
    original = list(range(20))
    deleted = np.zeros(20)
    outputs = set()
    for _ in range(2000):
        out = token_deletion(original, rng)
        outputs.add(tuple(out))
        deleted[sorted(set(original) - set(out))] += 1
    share = deleted / 2000
    assert share.min() > 0.10 and share.max() < 0.20, (
        f"each position should be deleted about 15% of the time; got {np.round(share, 2).tolist()}")
    assert len(outputs) > 500, "the deleted positions must be drawn at random, not fixed"
    same = [token_deletion(original, np.random.default_rng(7)) for _ in range(2)]
    assert same[0] == same[1], "draw the positions with `rng` (the same seed must give the same deletions)"


def check_document_rotation(document_rotation) -> None:
    """document_rotation(tokens, rng): a token chosen uniformly at random with `rng`, and the
    document rotated to begin with it (every start, the first included, equally likely)."""
    rng = np.random.default_rng(4)
    original = list(range(200, 210))
    starts = []
    for _ in range(1000):
        out = document_rotation(original, rng)
        start = out[0] - 200
        assert out == original[start:] + original[:start], f"{out} is not a rotation of {original}"
        starts.append(start)
    counts = np.bincount(starts, minlength=10)
    assert counts.min() > 60 and counts.max() < 140, f"every start equally likely (about 100 each): {counts.tolist()}"
    assert document_rotation([5], rng) == [5]
    same = [document_rotation(original, np.random.default_rng(7)) for _ in range(2)]
    assert same[0] == same[1], "draw the start with `rng` (the same seed must give the same rotation)"
