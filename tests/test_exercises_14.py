"""Lesson 14's exercise checks accept the solutions and reject plausible wrong answers."""

import math

import pytest
import torch
import torch.nn.functional as F

from checks.lesson_14 import check_elastic_init, check_kl_logits_masked, check_lsq_per_row
from solutions import lesson_14 as solutions
from solutions.lesson_14 import grad_scale, round_pass


def test_the_solutions_pass():
    check_lsq_per_row(solutions.lsq_per_row)
    check_elastic_init(solutions.elastic_init)
    check_kl_logits_masked(solutions.kl_logits_masked)


def whole_tensor_grad_scale(w, steps, bits):  # section 1's g = 1/sqrt(numel * Qp), numel of the whole tensor
    qp = 2 ** (bits - 1) - 1
    s = grad_scale(steps, 1 / math.sqrt(w.numel() * qp))
    return round_pass((w / s).clamp(-qp, qp)) * s


def no_grad_scale(w, steps, bits):
    qp = 2 ** (bits - 1) - 1
    return round_pass((w / steps).clamp(-qp, qp)) * steps


def round_without_ste(w, steps, bits):  # rounds for real: no gradient reaches w inside the grid
    qp = 2 ** (bits - 1) - 1
    s = grad_scale(steps, 1 / math.sqrt(w.shape[-1] * qp))
    return (w / s).clamp(-qp, qp).round() * s


@pytest.mark.parametrize("wrong", [whole_tensor_grad_scale, no_grad_scale, round_without_ste])
def test_lsq_per_row_check_rejects(wrong):
    with pytest.raises(AssertionError):
        check_lsq_per_row(wrong)


def over_2_to_the_bits(x, bits):  # 2^b steps for 2^b codes: the top code falls short of max(x)
    scale = (x.max() - x.min()) / 2 ** bits
    return scale, x.min() + 2 ** (bits - 1) * scale


def offset_is_min(x, bits):  # forgets that the lowest code is -2^(b-1), not 0
    return (x.max() - x.min()) / (2 ** bits - 1), x.min()


@pytest.mark.parametrize("wrong", [over_2_to_the_bits, offset_is_min])
def test_elastic_init_check_rejects(wrong):
    with pytest.raises(AssertionError):
        check_elastic_init(wrong)


def mean_over_padding_too(student, teacher, mask, temperature):  # the section's all-positions mean
    log_p_s, log_p_t = F.log_softmax(student / temperature, -1), F.log_softmax(teacher / temperature, -1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean() * temperature ** 2


def no_t_squared(student, teacher, mask, temperature):
    return solutions.kl_logits_masked(student, teacher, mask, temperature) / temperature ** 2


def reverse_kl(student, teacher, mask, temperature):  # KL(student || teacher)
    return solutions.kl_logits_masked(teacher, student, mask, temperature)


@pytest.mark.parametrize("wrong", [mean_over_padding_too, no_t_squared, reverse_kl])
def test_kl_check_rejects(wrong):
    with pytest.raises(AssertionError):
        check_kl_logits_masked(wrong)
