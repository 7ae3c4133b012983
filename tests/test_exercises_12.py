"""Lesson 12's exercise checks accept the solutions and reject plausible wrong answers."""

import pytest
import torch

from checks.lesson_12 import (check_int8_linear_asymmetric, check_int8_linear_per_row_weight,
                              check_int8_linear_per_tensor)
from solutions import lesson_12 as solutions


def test_the_solutions_pass():
    check_int8_linear_per_tensor(solutions.int8_linear_per_tensor)
    check_int8_linear_per_row_weight(solutions.int8_linear_per_row_weight)
    check_int8_linear_asymmetric(solutions.int8_linear_asymmetric)


def per_token_scale(x, w_codes, w_scale, bias, clip=2.5):  # one scale per token, not per tensor
    return solutions.int8_linear_per_row_weight(x, w_codes, w_scale.reshape(1, 1).expand(w_codes.shape[0], 1), bias, clip)


def no_clamp(x, w_codes, w_scale, bias, clip=2.5):  # forgets DQ-BART's +-2.5 clamp
    return solutions.int8_linear_per_tensor(x, w_codes, w_scale, bias, clip=float("inf"))


def over_128(x, w_codes, w_scale, bias, clip=2.5):  # 2^7 levels instead of 2^7 - 1
    x_scale = x.abs().amax().clamp(max=clip) / 128
    x_codes = torch.round(x / x_scale).clamp(-128, 127)
    return (x_codes @ w_codes.float().T) * (x_scale * w_scale) + bias


def scales_one_at_a_time(x, w_codes, w_scale, bias, clip=2.5):  # acc * sx * sw: within rounding, not bit for bit
    x_scale = x.abs().amax().clamp(max=clip) / 127
    x_codes = torch.round(x / x_scale).clamp(-127, 127)
    return (x_codes @ w_codes.float().T) * x_scale * w_scale + bias


@pytest.mark.parametrize("wrong", [per_token_scale, no_clamp, over_128, scales_one_at_a_time])
def test_per_tensor_check_rejects(wrong):
    with pytest.raises(AssertionError):
        check_int8_linear_per_tensor(wrong)


def one_weight_scale(x, w_codes, w_scale, bias, clip=2.5):  # the rows' mean scale for every row
    return solutions.int8_linear_per_row_weight(x, w_codes, w_scale.mean().expand_as(w_scale), bias, clip)


def per_tensor_input(x, w_codes, w_scale, bias, clip=2.5):  # one input scale instead of one per token
    x_scale = x.abs().amax().clamp(max=clip) / 127
    acc = torch.round(x / x_scale).clamp(-127, 127) @ w_codes.float().T
    return acc * (x_scale * w_scale.reshape(1, -1)) + bias


@pytest.mark.parametrize("wrong", [one_weight_scale, per_tensor_input])
def test_per_row_weight_check_rejects(wrong):
    with pytest.raises(AssertionError):
        check_int8_linear_per_row_weight(wrong)


def no_zero_point_fold(x, w_codes, w_scale, bias):  # multiplies the shifted codes, forgets the row sums
    lo, hi = x.amin(-1, keepdim=True).clamp(max=0), x.amax(-1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / 255
    u = (torch.round(x / scale) + torch.round(-lo / scale)).clamp(0, 255)
    return (u @ w_codes.float().T) * (scale * w_scale.reshape(1, -1)) + bias


def symmetric_instead(x, w_codes, w_scale, bias):  # the per-token int8 grid of section 1
    return solutions.int8_linear_per_row_weight(x, w_codes, w_scale.reshape(1, 1).expand(w_codes.shape[0], 1),
                                                bias, clip=float("inf"))


def over_256(x, w_codes, w_scale, bias):  # 256 steps for 256 codes: the top of the range is lost
    lo, hi = x.amin(-1, keepdim=True).clamp(max=0), x.amax(-1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / 256
    zero = torch.round(-lo / scale)
    u = (torch.round(x / scale) + zero).clamp(0, 255)
    return ((u - zero) @ w_codes.float().T) * (scale * w_scale.reshape(1, -1)) + bias


@pytest.mark.parametrize("wrong", [no_zero_point_fold, symmetric_instead, over_256])
def test_asymmetric_check_rejects(wrong):
    with pytest.raises(AssertionError):
        check_int8_linear_asymmetric(wrong)
