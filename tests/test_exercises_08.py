"""Lesson 08's exercise checks accept the solutions and reject plausible wrong answers."""

import copy

import pytest
import torch

from checks.lesson_08 import check_percentile_clip_quant, check_ternary_except
from minidq.fakequant import ternary_codes
from solutions import lesson_08 as solutions


def test_the_solutions_pass():
    check_percentile_clip_quant(solutions.percentile_clip_quant)
    check_ternary_except(solutions.ternary_except)


def _symmetric(x, bits, clip):
    qmax = 2 ** (bits - 1) - 1
    x = x.clamp(-clip, clip)
    scale = x.abs().max() / qmax
    return torch.round(x / scale).clamp(-qmax, qmax) * scale


def quantile_of_signed_values(x, bits, quantile):
    """The quantile of x, not of |x|: too small a clamp for data centred on 0."""
    return _symmetric(x, bits, torch.quantile(x.flatten(), quantile))


def fixed_clamp(x, bits, quantile):
    """DQ-BART's fixed +-2.5, whatever the quantile."""
    return _symmetric(x, bits, 2.5)


def scale_from_the_unclamped_max(x, bits, quantile):
    clip = torch.quantile(x.abs().flatten(), quantile)
    qmax = 2 ** (bits - 1) - 1
    scale = x.abs().max() / qmax
    return torch.round(x.clamp(-clip, clip) / scale).clamp(-qmax, qmax) * scale


@pytest.mark.parametrize("wrong", [quantile_of_signed_values, fixed_clamp, scale_from_the_unclamped_max])
def test_check_percentile_clip_quant_rejects(wrong):
    with pytest.raises(AssertionError):
        check_percentile_clip_quant(wrong)


def _ternary_where(model, quantize_it):
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and quantize_it(name):
                codes, alpha = ternary_codes(module.weight, clip=2.5)
                module.weight.copy_(codes * alpha)
    return model


def in_place(model, keep):
    """Right weights, but the model passed in is changed too (no copy)."""
    return _ternary_where(model, lambda n: not any(n.startswith(p) for p in keep))


def substring_match(model, keep):
    """A part of the prefix matched anywhere in the name ("layers.1" in name), so keeping
    encoder.layers.1 also keeps decoder.layers.1."""
    return _ternary_where(copy.deepcopy(model), lambda n: not any(p.rstrip(".").split(".", 1)[-1] in n for p in keep))


def only_the_kept(model, keep):
    """The rule inverted: the kept layers are the ones made ternary."""
    return _ternary_where(copy.deepcopy(model), lambda n: any(n.startswith(p) for p in keep))


def ignores_keep(model, keep):
    return _ternary_where(copy.deepcopy(model), lambda n: True)


@pytest.mark.parametrize("wrong", [in_place, substring_match, only_the_kept, ignores_keep])
def test_check_ternary_except_rejects(wrong):
    with pytest.raises(AssertionError):
        check_ternary_except(wrong)
