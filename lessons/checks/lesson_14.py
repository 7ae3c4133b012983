"""Checks for the exercises of lesson 14 (beyond DQ-BART: learned scales, KL distillation)."""

from __future__ import annotations

import torch

from minidq.distill import logits_loss
from minidq.learned import LSQ, Elastic


def _close(a: torch.Tensor, b: torch.Tensor, what: str, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)}, expected {tuple(b.shape)}"
    assert torch.allclose(a, b, rtol=rtol, atol=atol), f"{what}: max |diff| {(a - b).abs().max().item():.3g}"


def check_lsq_per_row(lsq_per_row) -> None:
    """Values and both gradients equal minidq's LSQ(bits, per_row=True) with the same steps."""
    g = torch.Generator().manual_seed(14)
    N, K = 5, 24
    for bits in (2, 4, 8):
        w = torch.randn(N, K, generator=g, dtype=torch.float64) * torch.linspace(0.2, 2.0, N, dtype=torch.float64)[:, None]
        steps = torch.linspace(0.05, 0.6, N, dtype=torch.float64)[:, None]  # rows whose steps clip and rows that do not
        upstream = torch.randn(N, K, generator=g, dtype=torch.float64)
        x, s = w.clone().requires_grad_(), steps.clone().requires_grad_()
        y = lsq_per_row(x, s, bits)
        y.backward(upstream)
        ref = LSQ(bits, per_row=True, rows=N).double()
        with torch.no_grad():
            ref.scale.copy_(steps)
        x_ref = w.clone().requires_grad_()
        y_ref = ref(x_ref)
        y_ref.backward(upstream)
        _close(y.detach(), y_ref.detach(), f"{bits}-bit values")
        _close(x.grad, x_ref.grad, f"{bits}-bit gradient for w")
        assert s.grad is not None, "no gradient reached the steps"
        _close(s.grad, ref.scale.grad, f"{bits}-bit gradient for the steps")


def check_elastic_init(elastic_init) -> None:
    g = torch.Generator().manual_seed(15)
    for b in (2, 4, 8):
        sample = torch.rand(50, generator=g) * 2 - 0.3
        fresh = Elastic(b)
        with torch.no_grad():
            fresh(sample)
        scale, offset = elastic_init(sample, b)
        _close(torch.as_tensor(scale, dtype=torch.float32), fresh.scale.detach(), f"{b}-bit scale", rtol=1e-5, atol=1e-7)
        _close(torch.as_tensor(offset, dtype=torch.float32), fresh.offset.detach(), f"{b}-bit offset", rtol=1e-5, atol=1e-7)
        lowest = -(2 ** (b - 1)) * scale + offset
        assert abs(float(lowest) - float(sample.min())) < 1e-5, "the lowest code must land on min(x)"


def check_kl_logits_masked(kl_logits_masked) -> None:
    g = torch.Generator().manual_seed(16)
    student, teacher = torch.randn(3, 6, 20, generator=g), 3 * torch.randn(3, 6, 20, generator=g)
    lengths = torch.tensor([6, 4, 2])
    mask = (torch.arange(6)[None, :] < lengths[:, None]).float()  # (B, T): 1 at real target tokens, 0 at padding
    for t in (1.0, 2.0, 4.0):
        _close(kl_logits_masked(student, teacher, mask, t), logits_loss(student, teacher, mask, "kl", t),
               f"KL at T={t}", rtol=1e-5, atol=1e-6)
    perfect = kl_logits_masked(teacher, teacher, mask, 3.0)
    assert abs(float(perfect)) < 1e-5, "a student equal to its teacher must score 0"
