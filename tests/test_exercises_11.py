"""Lesson 11's checks reject plausible wrong answers and accept the solutions."""

from dataclasses import replace

import pytest
import torch

from checks.lesson_11 import check_pack_2bit, check_paper_footprint_mib, check_unpack_trits_by_hand
from solutions import lesson_11 as solutions


def pack_high_first(u):
    """The first code in the HIGHEST bits."""
    u = torch.cat([u.flatten(), torch.zeros((-len(u.flatten())) % 4, dtype=torch.uint8)]).reshape(-1, 4)
    return (u[:, 0] << 6) | (u[:, 1] << 4) | (u[:, 2] << 2) | u[:, 3]


def pack_no_padding(u):
    """Drops the codes of an incomplete last group instead of padding them."""
    u = u.flatten()[: len(u.flatten()) // 4 * 4].reshape(-1, 4)
    return u[:, 0] | (u[:, 1] << 2) | (u[:, 2] << 4) | (u[:, 3] << 6)


def test_pack_2bit():
    check_pack_2bit(solutions.pack_2bit)
    for wrong in (pack_high_first, pack_no_padding):
        with pytest.raises(AssertionError):
            check_pack_2bit(wrong)


def unpack_highest_first(data, n):
    return solutions.unpack_trits_by_hand(data, len(data) * 5).reshape(-1, 5).flip(1).flatten()[:n]


def test_unpack_trits_by_hand():
    check_unpack_trits_by_hand(solutions.unpack_trits_by_hand)
    wrong = [unpack_highest_first,
             lambda data, n: solutions.unpack_trits_by_hand(data, len(data) * 5)]   # the padding digits kept
    for answer in wrong:
        with pytest.raises(AssertionError):
            check_unpack_trits_by_hand(answer)


def test_paper_footprint_mib():
    check_paper_footprint_mib(solutions.paper_footprint_mib)
    right = solutions.paper_footprint_mib
    wrong = [
        lambda c, w, e: right(c, w, e) - 4 * c.vocab_size / 2 ** 20,                       # final_logits_bias forgotten
        lambda c, w, e: right(replace(c, max_position_embeddings=c.max_position_embeddings - 2), w, e),  # 1024 rows
        lambda c, w, e: right(c, w, e) * 2 ** 20 / 1e6,                                     # MB, not MiB
        lambda c, w, e: right(c, w, w),                                                      # embedding at weight bits
    ]
    for answer in wrong:
        with pytest.raises(AssertionError):
            check_paper_footprint_mib(answer)
