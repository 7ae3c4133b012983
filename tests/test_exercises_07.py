"""Lesson 07's exercise checks accept the solutions and reject plausible wrong answers."""

import pytest
import torch

from checks.lesson_07 import check_asymmetric_quant, check_binary_ste, check_per_row_symmetric
from solutions import lesson_07 as solutions


def test_the_solutions_pass():
    check_asymmetric_quant(solutions.asymmetric_quant)
    check_per_row_symmetric(solutions.per_row_symmetric)
    check_binary_ste(solutions.BinarySTE)


def asym_2_to_the_b_steps(x, bits):
    """Off by one: 2^b steps instead of 2^b - 1, so the top of the range is never reached."""
    lo, hi = x.min(), x.max()
    scale = (hi - lo) / 2 ** bits
    return torch.round((x - lo) / scale).clamp(0, 2 ** bits - 1) * scale + lo


def asym_forgets_the_offset(x, bits):
    """The codes are taken from min, but min is not added back."""
    lo, hi = x.min(), x.max()
    scale = (hi - lo) / (2 ** bits - 1)
    return torch.round((x - lo) / scale).clamp(0, 2 ** bits - 1) * scale


def asym_is_the_symmetric_grid(x, bits):
    qmax = 2 ** (bits - 1) - 1
    scale = x.abs().max() / qmax
    return torch.round(x / scale).clamp(-qmax, qmax) * scale


@pytest.mark.parametrize("wrong", [asym_2_to_the_b_steps, asym_forgets_the_offset, asym_is_the_symmetric_grid])
def test_check_asymmetric_quant_rejects(wrong):
    with pytest.raises(AssertionError):
        check_asymmetric_quant(wrong)


def per_column(x, bits):
    """The wrong axis: one scale per column."""
    qmax = 2 ** (bits - 1) - 1
    scale = x.abs().amax(dim=-2, keepdim=True) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(x / scale).clamp(-qmax, qmax) * scale


def per_tensor(x, bits):
    qmax = 2 ** (bits - 1) - 1
    scale = x.abs().max() / qmax
    return torch.round(x / scale).clamp(-qmax, qmax) * scale


def zero_row_gives_nan(x, bits):
    """Right for every row but an all-zero one (0 / 0)."""
    qmax = 2 ** (bits - 1) - 1
    scale = x.abs().amax(dim=-1, keepdim=True) / qmax
    return torch.round(x / scale).clamp(-qmax, qmax) * scale


def qmax_off_by_one(x, bits):
    """2^b - 1 as the top code (an unsigned count) instead of 2^(b-1) - 1."""
    qmax = 2 ** bits - 1
    scale = x.abs().amax(dim=-1, keepdim=True) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(x / scale).clamp(-qmax, qmax) * scale


@pytest.mark.parametrize("wrong", [per_column, per_tensor, zero_row_gives_nan, qmax_off_by_one])
def test_check_per_row_symmetric_rejects(wrong):
    with pytest.raises(AssertionError):
        check_per_row_symmetric(wrong)


class PassesEverything(torch.autograd.Function):
    """The right forward, but the backward ignores the clip: the gradient passes everywhere."""

    @staticmethod
    def forward(ctx, w, clip):
        w = w.clamp(-clip, clip)
        return torch.where(w >= 0, 1.0, -1.0) * w.abs().mean()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class TorchSign(torch.autograd.Function):
    """torch.sign: sign(0) = 0, a third level the binary quantizer does not have."""

    @staticmethod
    def forward(ctx, w, clip):
        ctx.save_for_backward(w)
        ctx.clip = clip
        w = w.clamp(-clip, clip)
        return torch.sign(w) * w.abs().mean()

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= ctx.clip), None


class ScaleBeforeClamp(torch.autograd.Function):
    """alpha from the unclamped weights."""

    @staticmethod
    def forward(ctx, w, clip):
        ctx.save_for_backward(w)
        ctx.clip = clip
        alpha = w.abs().mean()
        return torch.where(w >= 0, 1.0, -1.0) * alpha

    @staticmethod
    def backward(ctx, grad):
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= ctx.clip), None


@pytest.mark.parametrize("wrong", [PassesEverything, TorchSign, ScaleBeforeClamp])
def test_check_binary_ste_rejects(wrong):
    with pytest.raises(AssertionError):
        check_binary_ste(wrong)
