"""Lesson 03's exercise checks accept the solutions and reject plausible wrong answers."""

import pytest
import torch
import torch.nn.functional as F

from checks.lesson_03 import check_pre_ln_encoder_layer, check_shift_tokens_right
from solutions import lesson_03 as solutions


def test_the_solutions_pass():
    check_shift_tokens_right(solutions.shift_tokens_right)
    check_pre_ln_encoder_layer(solutions.pre_ln_encoder_layer)


def shift_keeping_minus_100(labels, pad_token_id, decoder_start_token_id):
    shifted = torch.full_like(labels, pad_token_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted


def shift_left(labels, pad_token_id, decoder_start_token_id):  # the wrong direction
    shifted = torch.full_like(labels, pad_token_id)
    shifted[:, :-1] = labels[:, 1:]
    return shifted.masked_fill(shifted == -100, pad_token_id)


def shift_in_place(labels, pad_token_id, decoder_start_token_id):  # right values, but edits the labels
    labels.masked_fill_(labels == -100, pad_token_id)
    return solutions.shift_tokens_right(labels, pad_token_id, decoder_start_token_id)


@pytest.mark.parametrize("wrong", [shift_keeping_minus_100, shift_left, shift_in_place])
def test_check_shift_tokens_right_rejects(wrong):
    with pytest.raises(AssertionError):
        check_shift_tokens_right(wrong)


def ln(x, norm):
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def post_ln_layer(x, layer, mask=None):  # BART's order with mBART's weights
    x = ln(x + solutions._attention(x, layer.self_attn, mask), layer.self_attn_layer_norm)
    return ln(x + layer.fc2(F.gelu(layer.fc1(x))), layer.final_layer_norm)


def pre_ln_normalising_the_sum(x, layer, mask=None):  # pre-LN, then a LayerNorm after the sum as well
    return ln(solutions.pre_ln_encoder_layer(x, layer, mask), layer.final_layer_norm)


def pre_ln_without_the_mask(x, layer, mask=None):
    return solutions.pre_ln_encoder_layer(x, layer, None)


@pytest.mark.parametrize("wrong", [post_ln_layer, pre_ln_normalising_the_sum, pre_ln_without_the_mask])
def test_check_pre_ln_encoder_layer_rejects(wrong):
    with pytest.raises(AssertionError):
        check_pre_ln_encoder_layer(wrong)
