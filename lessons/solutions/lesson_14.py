"""Solutions to the exercises of lesson 14 (beyond DQ-BART: learned scales, KL distillation)."""

import math

import torch
import torch.nn.functional as F


def lsq_init(x: torch.Tensor, bits: int) -> torch.Tensor:
    """LSQ's first step size: 2 * mean|x| / sqrt(Qp), with Qp = 2^(bits-1) - 1."""
    qp = 2 ** (bits - 1) - 1
    return 2 * x.abs().mean() / math.sqrt(qp)


def elastic_init(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, offset) of a grid whose 2^bits codes Qn..Qp span min(x)..max(x): codes * scale +
    offset is min(x) at code Qn = -2^(bits-1) and max(x) at Qp = 2^(bits-1) - 1."""
    qn, qp = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    scale = (x.max() - x.min()) / (qp - qn)
    return scale, x.min() - qn * scale


def kl_logits(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened distributions, averaged over positions,
    times T^2 (Hinton et al.: keeps the gradient's size independent of T)."""
    log_p_s = F.log_softmax(student / temperature, dim=-1)
    log_p_t = F.log_softmax(teacher / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    return kl.mean() * temperature ** 2
