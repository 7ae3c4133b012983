"""Lesson 05's exercise checks accept the solutions and reject plausible wrong answers."""

import random

import pytest

from checks.lesson_05 import check_document_rotation, check_token_deletion
from solutions import lesson_05 as solutions


def test_the_solutions_pass():
    check_token_deletion(solutions.token_deletion)
    check_document_rotation(solutions.document_rotation)


def drop_the_last_15_percent(tokens, rng, ratio=0.15):  # the shortcut the old check let through
    return tokens[: len(tokens) - round(ratio * len(tokens))]


def drop_the_first_15_percent(tokens, rng, ratio=0.15):
    return tokens[round(ratio * len(tokens)):]


def drop_evenly_spaced(tokens, rng, ratio=0.15):  # the right count, at fixed places
    k = round(ratio * len(tokens))
    gone = {int(i * len(tokens) / k) for i in range(k)} if k else set()
    return [t for i, t in enumerate(tokens) if i not in gone]


def drop_floor_count(tokens, rng, ratio=0.15):  # int() instead of round(): one too few, sometimes
    gone = set(rng.choice(len(tokens), int(ratio * len(tokens)), replace=False).tolist())
    return [t for i, t in enumerate(tokens) if i not in gone]


def drop_each_with_probability(tokens, rng, ratio=0.15):  # BERT-style coin flips: the count varies
    return [t for t in tokens if rng.random() >= ratio]


def drop_with_global_random(tokens, rng, ratio=0.15):  # ignores rng
    gone = set(random.sample(range(len(tokens)), round(ratio * len(tokens))))
    return [t for i, t in enumerate(tokens) if i not in gone]


@pytest.mark.parametrize("wrong", [drop_the_last_15_percent, drop_the_first_15_percent, drop_evenly_spaced,
                                   drop_floor_count, drop_each_with_probability, drop_with_global_random])
def test_check_token_deletion_rejects(wrong):
    with pytest.raises(AssertionError):
        check_token_deletion(wrong)


def rotate_never_from_the_start(tokens, rng):  # off by one: start drawn from 1..n-1
    start = int(rng.integers(1, len(tokens))) if len(tokens) > 1 else 0
    return tokens[start:] + tokens[:start]


def rotate_by_half(tokens, rng):
    start = len(tokens) // 2
    return tokens[start:] + tokens[:start]


def shuffle_instead(tokens, rng):
    return [tokens[i] for i in rng.permutation(len(tokens))]


@pytest.mark.parametrize("wrong", [rotate_never_from_the_start, rotate_by_half, shuffle_instead])
def test_check_document_rotation_rejects(wrong):
    with pytest.raises(AssertionError):
        check_document_rotation(wrong)
