"""Solutions to the exercises of lesson 14 (beyond DQ-BART: learned scales, KL distillation)."""

import math

import torch
import torch.nn.functional as F


def round_pass(v: torch.Tensor) -> torch.Tensor:
    return (v.round() - v).detach() + v  # forward: round(v); backward: identity


def grad_scale(s: torch.Tensor, g: float) -> torch.Tensor:
    return (s - s * g).detach() + s * g  # forward: s; backward: g times the gradient


def lsq_per_row(w: torch.Tensor, steps: torch.Tensor, bits: int) -> torch.Tensor:
    """LSQ with one learned step per row of w (N, K), steps (N, 1): each row's step collects the
    gradient of its own K elements, so its gradient scale is 1 / sqrt(K * Qp), not of all N * K."""
    qp = 2 ** (bits - 1) - 1
    s = grad_scale(steps, 1 / math.sqrt(w.shape[-1] * qp))   # (N, 1)
    return round_pass((w / s).clamp(-qp, qp)) * s             # (N, K)


def elastic_init(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, offset) of a grid whose 2^bits codes Qn..Qp span min(x)..max(x): codes * scale +
    offset is min(x) at code Qn = -2^(bits-1) and max(x) at Qp = 2^(bits-1) - 1."""
    qn, qp = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    scale = (x.max() - x.min()) / (qp - qn)
    return scale, x.min() - qn * scale


def kl_logits_masked(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened distributions at the real target
    positions only (mask (B, T): 1 real, 0 padding), averaged over those positions, times T^2."""
    log_p_s = F.log_softmax(student / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)        # (B, T)
    return (kl * mask).sum() / mask.sum() * temperature ** 2
