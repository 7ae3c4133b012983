"""Lesson 01's exercise checks accept the solutions and reject plausible wrong answers."""

import pytest
import torch

from checks.lesson_01 import check_decode_ids, check_pad_batch
from solutions import lesson_01 as solutions

CHAR_TO_BYTE = {c: b for b, c in solutions.bytes_to_unicode().items()}


def test_the_solutions_pass():
    check_decode_ids(solutions.decode_ids)
    check_pad_batch(solutions.pad_batch)


def decode_token_by_token(ids, id_to_token, special_ids):  # a character cut across tokens breaks
    return "".join(bytes(CHAR_TO_BYTE[c] for c in id_to_token[i]).decode("utf-8", errors="replace")
                   for i in ids if i not in special_ids)


def decode_keeping_specials(ids, id_to_token, special_ids):
    return bytes(CHAR_TO_BYTE.get(c, 63) for i in ids for c in id_to_token[i]).decode("utf-8", errors="replace")


def decode_spaces_only(ids, id_to_token, special_ids):  # 'Ġ' -> ' ' but no byte table: accents break
    return "".join(id_to_token[i] for i in ids if i not in special_ids).replace("Ġ", " ").replace("Ċ", "\n")


@pytest.mark.parametrize("wrong", [decode_token_by_token, decode_keeping_specials, decode_spaces_only])
def test_check_decode_ids_rejects(wrong):
    with pytest.raises(AssertionError):
        check_decode_ids(wrong)


def pad_left(sequences, pad_id):
    ids, mask = solutions.pad_batch([s[::-1] for s in sequences], pad_id)
    return ids.flip(1), mask.flip(1)


def pad_bool_mask(sequences, pad_id):
    ids, mask = solutions.pad_batch(sequences, pad_id)
    return ids, mask.bool()


def pad_to_fixed_length(sequences, pad_id):
    return solutions.pad_batch(sequences + [[pad_id] * 16], pad_id)[0][:-1], solutions.pad_batch(sequences + [[0] * 16], pad_id)[1][:-1]


def pad_with_zero(sequences, pad_id):
    ids, mask = solutions.pad_batch(sequences, pad_id)
    return ids.masked_fill(mask == 0, 0), mask


@pytest.mark.parametrize("wrong", [pad_left, pad_bool_mask, pad_to_fixed_length, pad_with_zero])
def test_check_pad_batch_rejects(wrong):
    with pytest.raises(AssertionError):
        check_pad_batch(wrong)
