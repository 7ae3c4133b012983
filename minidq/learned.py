"""Learned quantizer scales: LSQ (Esser et al., 2020) and the elastic quantizer of TBT (Liu et al., 2023).

DQ-BART's quantizers (minidq.quant) read their scale off the data at every forward: max|x| of
the tensor (or TWN's mean). One outlier then stretches the grid for every other value, and the
scale never learns what the loss would prefer. Here the scale is a parameter trained with the
task and distillation losses, as the weights are:

    LSQ      x_q = s * clamp(round(x / s), Qn, Qp)                    learned step size s
    elastic  x_q = a * clamp(round((x - b) / a), Qn, Qp) + b          learned scale a and offset b

with Qp = 2^(bits-1) - 1 and, for LSQ, Qn = -Qp (the symmetric grid of minidq.quant, so LSQ codes
pack and multiply like max-abs ones; at 2 bits that is the ternary grid -1, 0, +1); for elastic
activations Qn = -2^(bits-1) (all 2^bits codes: the offset already places the grid, TBT's range).
Whatever lies beyond the grid is clipped: the scale trades clipping error against rounding error.

The gradients, as LSQ derives them (rounding passed straight through; v = x / s, or (x - b) / a):

    dx_q/dx = 1 inside the grid's range, 0 outside (the clamp is flat there)
    dx_q/ds = round(v) - v inside, Qn below the range, Qp above it (the clipped code)
    dx_q/db = 0 inside (x_q follows x), 1 outside (the clipped value moves with b)

and the scale's gradient is multiplied by g = 1/sqrt(numel * Qp), numel the elements that share
the scale: its gradient sums over all of them, and g keeps the size of its updates, relative to
its value, in line with the weights' (LSQ's argument). The same g scales the offset's gradient.
Under AdamW (minidq.train), which divides each update by the gradient's own running size, g
cancels out except where gradients come near Adam's eps (1e-8), where it slows the scale down.

A scale of 0 is a quantizer that has seen no data yet: the first tensor it meets sets it,
LSQ's rule s = 2 mean|x| / sqrt(Qp), and for elastic the grid that spans the first batch's
min..max (DQ-BART's own range), from where training learns to clip. A trained or loaded scale
is never 0, so nothing is reset.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import ConfigError
from .fakequant import FakeQuantizer, dequantize, nonzero, reduce

EPS = 1e-8  # a learned scale is kept at least this large: a step of 0 or below divides by 0


def lsq_codes(x: torch.Tensor, scale: torch.Tensor, qn: int, qp: int) -> torch.Tensor:
    """round(x / scale) clamped to [qn, qp], as int8: what the forward dequantizes and export stores."""
    return torch.round(x / scale).clamp(qn, qp).to(torch.int8)


def grad_scale(numel: int, qp: int) -> float:
    """LSQ's g = 1 / sqrt(numel * Qp)."""
    return 1.0 / math.sqrt(numel * qp)


class LSQFunction(torch.autograd.Function):
    """x_q = dequantize(codes, scale) [+ offset]; backward: the gradients of the module docstring.

    One Function for both quantizers: with no offset it is LSQ (qn = -qp), with one it is elastic."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor | None, qn: int, qp: int,
                g: float) -> torch.Tensor:
        shifted = x if offset is None else x - offset
        ctx.save_for_backward(shifted, scale)
        ctx.qn, ctx.qp, ctx.g, ctx.has_offset = qn, qp, g, offset is not None
        return dequantize(lsq_codes(shifted, scale, qn, qp), scale, offset)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        shifted, scale = ctx.saved_tensors
        v = shifted / scale
        below, above = v < ctx.qn, v > ctx.qp
        inside = ~(below | above)
        grad_x = grad * inside
        d_scale = torch.where(inside, torch.round(v) - v, torch.where(below, float(ctx.qn), float(ctx.qp)))
        per_row = scale.dim() > 0  # (rows, 1): sum each row's share; (): sum everything
        grad_s = reduce(torch.sum, grad * d_scale, per_row) * ctx.g
        grad_offset = reduce(torch.sum, grad * ~inside, False) * ctx.g if ctx.has_offset else None
        return grad_x, grad_s.reshape(scale.shape), grad_offset, None, None, None


class LSQ(FakeQuantizer):
    """Learned step size quantization: a symmetric grid whose step is a trained parameter.

    For weights (one step per tensor, or per row) and activations (one per tensor: a learned
    scale is fixed at inference, so it cannot follow each row as act_scale="token" does)."""

    scheme = "symmetric"  # the codes' grid: they pack, freeze and multiply exactly as max-abs codes do
    learned = True
    clip = None           # the learned range s * Qp is its clip

    def __init__(self, bits: int, per_row: bool = False, rows: int = 1, device=None):
        super().__init__()
        if bits < 2:
            raise ConfigError(f"LSQ needs at least 2 bits (a symmetric grid), got {bits}")
        self.bits, self.per_row, self.qp = bits, per_row, 2 ** (bits - 1) - 1
        self.scale = nn.Parameter(torch.zeros((rows, 1) if per_row else (), device=device))  # LSQ's s

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        if not self.scale.any():
            self.scale.copy_(nonzero(2 * reduce(torch.mean, x.abs(), self.per_row) / math.sqrt(self.qp)))

    def step_size(self) -> torch.Tensor:
        return self.scale.clamp(min=EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.initialize(x)
        numel = x.shape[-1] if self.per_row else x.numel()
        return LSQFunction.apply(x, self.step_size(), None, -self.qp, self.qp, grad_scale(numel, self.qp))

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes, scale): exactly what forward dequantizes, for export and the integer path."""
        self.initialize(x)
        scale = self.step_size()
        return lsq_codes(x, scale, -self.qp, self.qp), scale

    def extra_repr(self) -> str:
        return f"lsq, bits={self.bits}, per_row={self.per_row}"


class Elastic(FakeQuantizer):
    """TBT's elastic activation quantizer: a learned scale and a learned offset, one per tensor.

    The offset lets the grid sit where the values are: attention probabilities lie in [0, 1]
    and GELU outputs mostly above -0.17, where a grid symmetric around 0 wastes half its codes."""

    scheme = "elastic"
    learned = True
    per_row = False
    clip = None

    def __init__(self, bits: int, device=None):
        super().__init__()
        if bits < 2:
            raise ConfigError(f"the elastic quantizer needs at least 2 bits here, got {bits}")
        self.bits, self.qn, self.qp = bits, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        self.scale = nn.Parameter(torch.zeros((), device=device))   # TBT's alpha
        self.offset = nn.Parameter(torch.zeros((), device=device))  # TBT's beta

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        if not self.scale.any():
            lo, hi = x.min(), x.max()
            self.offset.copy_(lo - self.qn * nonzero((hi - lo) / (self.qp - self.qn)))
            self.scale.copy_(nonzero((hi - lo) / (self.qp - self.qn)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.initialize(x)
        return LSQFunction.apply(x, self.scale.clamp(min=EPS), self.offset, self.qn, self.qp,
                                 grad_scale(x.numel(), self.qp))

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(codes, scale, offset) with x_q = codes * scale + offset, exactly the forward's."""
        self.initialize(x)
        scale = self.scale.clamp(min=EPS)
        return lsq_codes(x - self.offset, scale, self.qn, self.qp), scale, self.offset.detach()

    def extra_repr(self) -> str:
        return f"elastic, bits={self.bits}"


def learned_parameters(model: nn.Module) -> set[str]:
    """Names of the learned quantizers' scales and offsets: no weight decay (it would shrink the
    grid), and stored in fp32 by export (the forward uses them exactly)."""
    return {f"{name}.{p}" for name, m in model.named_modules() if isinstance(m, FakeQuantizer) and m.learned
            for p, _ in m.named_parameters()}
