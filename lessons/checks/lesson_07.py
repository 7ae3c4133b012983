"""Checks for the exercises of lesson 07 (quantizers and the straight-through estimator).

Each check builds its own inputs and compares the answer with minidq's quantizers; each is made
of asserts, so a wrong answer fails with an AssertionError."""

from __future__ import annotations

import torch

from minidq.fakequant import Quantizer


def _weights(rows: int = 48, cols: int = 64, seed: int = 0) -> torch.Tensor:
    """A heavy-tailed weight-like matrix whose rows differ in size (as in the lesson)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.distributions.StudentT(8.0).sample((rows, cols)) * 0.02
    return t * torch.exp(0.5 * torch.randn(rows, 1, generator=g))


def check_asymmetric_quant(asymmetric_quant) -> None:
    """asymmetric_quant(x, bits): min-max fake quantization of a whole tensor, equal to minidq's."""
    probs = (torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(1)) * 2).softmax(-1)
    for bits in (2, 3, 4, 8):
        for x in (probs, _weights(), torch.tensor([0.3, -1.0, 2.0, 0.0]), torch.linspace(1.0, 5.0, 50)):
            got = asymmetric_quant(x, bits)
            assert got.shape == x.shape, "the output must have the input's shape"
            torch.testing.assert_close(got, Quantizer("asymmetric", bits)(x), msg=f"{bits} bits")
    # 4 levels at 2 bits: 4 evenly spaced values are represented exactly, the ends included
    assert asymmetric_quant(torch.tensor([0.0, 1.0, 2.0, 3.0]), 2).tolist() == [0.0, 1.0, 2.0, 3.0]
    # the grid is the data's own range: all-positive data keeps its minimum exactly
    x = torch.tensor([2.0, 2.5, 7.0])
    assert asymmetric_quant(x, 8).min().item() == 2.0 and asymmetric_quant(x, 8).max().item() == 7.0


def check_per_row_symmetric(per_row_symmetric) -> None:
    """per_row_symmetric(x, bits): symmetric max-abs grid, one scale per row (last dimension)."""
    w = _weights()
    for bits in (2, 3, 4, 8):
        assert torch.equal(per_row_symmetric(w, bits), Quantizer("symmetric", bits, per_row=True)(w)), f"{bits} bits"
    # 3 bits: codes -3..3; row 2's step is 1/3; an all-zero row must stay zero (not NaN)
    z = torch.tensor([[0.0, 0.0, 0.0], [1.0, -0.6, 0.25]])
    got = per_row_symmetric(z, 3)
    assert not torch.isnan(got).any(), "an all-zero row gave NaN (a scale of 0 divides by 0)"
    torch.testing.assert_close(got, torch.tensor([[0.0, 0.0, 0.0], [1.0, -2 / 3, 1 / 3]]))
    # a 3-D input: one scale per vector along the last dimension
    x = _weights(rows=24, cols=8, seed=2).reshape(2, 12, 8)
    assert torch.equal(per_row_symmetric(x, 4), Quantizer("symmetric", 4, per_row=True)(x))


def check_binary_ste(BinarySTE) -> None:
    """BinarySTE.apply(w, clip): sign(w) * mean|clamped w| forward, STE backward (0 beyond clip)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(32, 16, generator=g) * 1.5          # about a tenth of the entries beyond +-2.5
    x[0, :4] = 0.0                                      # sign(0) counts as +1
    for clip in (2.5, 1.0):
        mine, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
        q_mine, q_ref = BinarySTE.apply(mine, clip), Quantizer("binary", 1, clip=clip)(ref)
        assert torch.equal(q_mine, q_ref), f"forward values differ from minidq's (clip {clip})"
        upstream = torch.randn(32, 16, generator=g)
        (q_mine * upstream).sum().backward()
        (q_ref * upstream).sum().backward()
        assert mine.grad is not None, "no gradient reached the input: the backward must pass it straight through"
        assert torch.equal(mine.grad, upstream * (x.abs() <= clip)), f"gradient is not the STE's (clip {clip})"
