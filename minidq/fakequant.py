"""Fake quantization, DQ-BART style: quantized forward, straight-through backward; and the one
interface every quantizer implements.

The model keeps its full-precision ("latent") weights as the trained parameters. Every forward
pass rounds them, and the activations, onto a b-bit grid, so the loss is computed with what a
low-bit model would compute. Rounding has zero gradient almost everywhere, so each quantizer's
backward is the straight-through estimator (STE): it pretends the rounding was the identity,
passing the incoming gradient where the input lay inside the clipping range and 0 outside.

Four quantizers, each a pure `*_codes` function (integer codes and scale, reused by export to
store exactly what the forward used) wrapped in an `autograd.Function` (forward = dequantized
codes, backward = STE):

    symmetric   codes in [-(2^(b-1)-1), 2^(b-1)-1], x ~ codes * scale, scale = max|x| / (2^(b-1)-1)
    asymmetric  codes in [0, 2^b - 1],            x ~ codes * scale + min,  scale = (max - min) / (2^b - 1)
    ternary     TWN: codes in {-1, 0, 1}, threshold 0.7 * mean|x|, scale = mean |x| of the survivors
    binary      codes in {-1, 1}, scale = mean|x|

Like DQ-BART's code (inherited from TernaryBERT), each first clamps its input to
[-clip, clip] (2.5 there), and the STE zeroes the gradient outside that range.

Every quantizer is a `FakeQuantizer`: a module with declared `scheme`, `bits`, `per_row`, `clip`
and `learned`, a forward (the dequantized codes) and `codes(x)` (what export stores). `NoQuant`
(scheme None) fills the slots of a model that is not quantized. Scales that the loss learns
instead of reading them off the data (LSQ; TBT's elastic activation quantizer, with an offset)
are in minidq.learned; the frozen quantizer of an inference model in minidq.deploy.freeze; which
quantizer goes where (QuantConfig, quantize) in minidq.quant.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError


# ---------------------------------------------------------------------------------------------
# The interface: what model.py, quant.py, freeze.py, intinfer.py and packed_file.py may ask of a quantizer.

class FakeQuantizer(nn.Module):
    """A quantizer slot. The base class is the identity: a slot that does not quantize (NoQuant)."""

    scheme: str | None = None     # "symmetric", "asymmetric", "ternary", "binary", "elastic"; None: no quantization
    bits: int = 32
    per_row: bool = False         # one scale per row (the last dim), else one per tensor
    clip: float | None = None     # values are clamped to +-clip first (a learned grid's range is its clip)
    learned: bool = False         # its scale is a parameter the loss trains (minidq.learned)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def codes(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(codes, scale[, offset]) with dequantize(...) equal to forward(x)."""
        raise TypeError(f"{type(self).__name__} does not quantize: it has no codes")

    def extra_repr(self) -> str:
        return "identity: no quantization" if self.scheme is None else ""


NoQuant = FakeQuantizer  # the name a slot that does not quantize reads best with


# ---------------------------------------------------------------------------------------------
# Codes and scales: pure functions, no autograd. x ~ codes * scale (+ offset for asymmetric).

def reduce(fn: Callable[..., torch.Tensor], x: torch.Tensor, per_row: bool) -> torch.Tensor:
    """`fn` (torch.amax, torch.mean, ...) over the whole tensor (0-dim result), or over each row,
    i.e. each vector along the last dim, kept as shape (..., 1) so it broadcasts against x.

    A row is a weight's output unit, an embedding's token, a linear input's token, one head's
    query/key/value of one token, or one query's attention probabilities: whatever the row, its
    scale depends on that row alone, not on the rest of the batch or the cache."""
    return fn(x, dim=-1, keepdim=True) if per_row else fn(x)


def clamp(x: torch.Tensor, clip: float | None) -> torch.Tensor:
    return x if clip is None else x.clamp(-clip, clip)


def nonzero(scale: torch.Tensor) -> torch.Tensor:
    """An all-zero (or constant, for min-max) row has nothing to scale: use 1 instead of dividing by 0."""
    return torch.where(scale > 0, scale, 1.0)


def symmetric_codes(x: torch.Tensor, bits: int, per_row: bool = False, clip: float | None = None,
                    dtype: torch.dtype = torch.int8) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-abs grid symmetric around 0: 2^b - 1 levels, so 0 is exact and +-max are both reachable.

    dtype: int8 to store them; x's float dtype for a kernel that reads codes as whole-number
    floats (minidq.deploy.intinfer), which saves a cast there and back."""
    if bits < 2:
        raise ConfigError(f"symmetric quantization needs at least 2 bits, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    # Clamping x to +-clip first gives the same codes: max|clamp(x)| = min(max|x|, clip), and a
    # value beyond the clip lands beyond +-qmax, where the final clamp puts it. One pass less over x.
    amax = reduce(torch.amax, x.abs(), per_row)
    scale = nonzero((amax if clip is None else amax.clamp(max=clip)) / qmax)
    codes = torch.round(x / scale).clamp_(-qmax, qmax).to(dtype)
    return codes, scale


def tensor_scale(x: torch.Tensor, bits: int, clip: float | None) -> tuple[float, bool]:
    """symmetric_codes' one-per-tensor scale as a Python float (the same float32 value), and
    whether the clip cut max|x|. One pass over x instead of a chain of small tensor operations,
    which at decoding sizes (a few tokens) cost more than the maths; for inference only."""
    lo, hi = torch.aminmax(x)
    amax = max(-lo.item(), hi.item())
    clipped = clip is not None and amax > np.float32(clip)  # a float32 tensor clamps at float32(clip)
    scale = (np.float32(clip) if clipped else np.float32(amax)) / np.float32(2 ** (bits - 1) - 1)
    return float(scale) or 1.0, clipped  # an all-zero x: 1, as nonzero() gives


def fake_symmetric(x: torch.Tensor, bits: int, clip: float | None) -> tuple[torch.Tensor, float]:
    """(dequantize(*symmetric_codes(x, bits, clip=clip)), its scale), bit for bit, in four passes over x."""
    scale, clipped = tensor_scale(x, bits, clip)
    codes = torch.round(x / scale)  # within +-qmax unless the clip cut max|x|
    if clipped:
        qmax = 2 ** (bits - 1) - 1
        codes.clamp_(-qmax, qmax)
    return codes.mul_(scale), scale


def asymmetric_codes(x: torch.Tensor, bits: int, per_row: bool = False,
                     clip: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Min-max grid: all 2^b levels span [min, max], none wasted on a side the data never reaches.

    Returns (codes, scale, offset) with x ~ codes * scale + offset (offset = min, a float, as in
    DQ-BART's code; 0 itself is then generally not on the grid)."""
    x = clamp(x, clip)
    levels = 2 ** bits - 1
    lo = reduce(torch.amin, x, per_row)
    scale = nonzero((reduce(torch.amax, x, per_row) - lo) / levels)
    codes = torch.round((x - lo) / scale).clamp(0, levels).to(torch.uint8)
    return codes, scale, lo


def ternary_codes(x: torch.Tensor, per_row: bool = False,
                  clip: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """TWN (Li et al. 2016): weights below 0.7 * mean|x| become 0, the rest +-alpha.

    alpha = mean |x| over the survivors minimises ||x - alpha * codes||^2 for fixed codes. The
    best threshold is 0.67 * mean|x| for uniform weights and 0.77 * mean|x| for Gaussian ones;
    TWN fixes it at 0.7 so that no search is needed."""
    magnitude = x.abs() if clip is None else x.abs().clamp_(max=clip)  # |clamp(x)|, in one pass less
    threshold = 0.7 * reduce(torch.mean, magnitude, per_row)
    keep = magnitude > threshold
    count = reduce(torch.sum, keep.to(x.dtype), per_row).clamp(min=1)  # an all-zero row keeps nothing
    scale = reduce(torch.sum, magnitude * keep, per_row) / count
    codes = torch.sign(x).to(torch.int8) * keep  # sign(clamp(x)) = sign(x)
    return codes, scale


def binary_codes(x: torch.Tensor, per_row: bool = False,
                 clip: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """sign(x) * mean|x|: the scale that minimises ||x - scale * sign(x)||^2. sign(0) counts as +1."""
    x = clamp(x, clip)
    scale = reduce(torch.mean, x.abs(), per_row)
    codes = torch.where(x >= 0, 1, -1).to(torch.int8)
    return codes, scale


# ---------------------------------------------------------------------------------------------
# Fake quantization: forward = dequantized codes, backward = straight-through estimator.

def dequantize(codes: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    """codes * scale (+ offset) in the scale's dtype: the one expression that training, export and
    integer inference all evaluate, so a stored or frozen weight equals the trained one bit for bit."""
    x = codes.to(scale.dtype) * scale
    return x if offset is None else x + offset


def inside_clip(x: torch.Tensor, clip: float | None) -> torch.Tensor | None:
    """Where the STE lets the gradient through: -clip <= x <= clip (None: everywhere)."""
    return None if clip is None else (x >= -clip) & (x <= clip)


def straight_through(grad: torch.Tensor, inside: torch.Tensor | None) -> torch.Tensor:
    """d q(x) / dx taken as 1 inside the clip range (rounding treated as identity), 0 outside
    (there the clamp really is flat: moving x does not move q(x))."""
    return grad if inside is None else grad * inside


class FakeQuant(torch.autograd.Function):
    """q(x) = dequantize(codes(x)) for any of the four schemes; its backward is the STE."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, quantizer: "Quantizer") -> torch.Tensor:
        ctx.save_for_backward(inside_clip(x, quantizer.clip) if ctx.needs_input_grad[0] else None)  # none at inference
        return dequantize(*quantizer.codes(x))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return straight_through(grad, inside), None


def integer_form(input_quant: FakeQuantizer, weight_quant: FakeQuantizer) -> bool:
    """Whether x_q @ w_q^T factors into (integer codes @ integer codes) * scales: the input on a
    symmetric grid (or elastic: codes * scale + one offset, whose product with w_q is the offset
    times w_q's row sums), the weight on any grid without an offset (all but asymmetric)."""
    return input_quant.scheme in ("symmetric", "elastic") and weight_quant.scheme in ("symmetric", "ternary", "binary")


def learned(*quantizers: FakeQuantizer) -> bool:
    """Whether any of these quantizers trains its scale (minidq.learned): its gradient must then
    flow through autograd, not through QuantMatmul's fixed-scale backward."""
    return any(q.learned for q in quantizers)


def rescale(acc: torch.Tensor, x_scale: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
    """Exact sums of code products acc (..., N) -> floats: times the input's scale ((..., 1) or ())
    and the weight's ((N, 1) per row, or ()). The integer path (minidq.deploy.intinfer) ends the same way."""
    return dequantize(acc, x_scale * (w_scale.reshape(-1) if w_scale.dim() else w_scale))


class QuantMatmul(torch.autograd.Function):
    """F.linear(q(x), q(w)) as an integer machine computes it: y = (cx @ cw^T) * sx * sw.

    The codes are small integers held in floats, so every partial sum is an integer below 2^24
    (ternary weights: always; 8-bit x 8-bit: unless K * 127^2 terms all align) and the float
    matmul is exact: the forward is, bit for bit, int8 x int8 -> int32 followed by the scales.
    The backward is what F.linear's and the two quantizers' STE give: dL/dx = (dL/dy @ w_q) where
    x is inside its clip range, dL/dw = (dL/dy^T @ x_q) where w is inside its own."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, input_quant: "Quantizer", weight_quant: FakeQuantizer):
        x_codes, x_scale = input_quant.codes(x, dtype=torch.float32)  # no int8 round trip: saves two copies
        w_codes, w_scale = weight_quant.codes(weight)[:2]
        ctx.save_for_backward(x_codes, x_scale, w_codes, w_scale,
                              inside_clip(x, input_quant.clip) if ctx.needs_input_grad[0] else None,
                              inside_clip(weight, weight_quant.clip) if ctx.needs_input_grad[1] else None)
        # (..., N): exact integer sums. Under bf16 autocast this matmul runs in bfloat16: the codes are
        # exact in it (|code| <= 127 < 2^8), the sums are rounded to bfloat16, the scales stay float32.
        acc = F.linear(x_codes.to(x.dtype), w_codes.to(x.dtype))
        return rescale(acc, x_scale, w_scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # grad: (..., N)
        x_codes, x_scale, w_codes, w_scale, x_inside, w_inside = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = straight_through(grad @ dequantize(w_codes, w_scale), x_inside)  # (..., K)
        if ctx.needs_input_grad[1]:
            x_q = dequantize(x_codes, x_scale).reshape(-1, x_codes.shape[-1])  # (M, K)
            grad_w = straight_through(grad.reshape(-1, grad.shape[-1]).T @ x_q, w_inside)  # (N, K)
        return grad_x, grad_w, None, None


def quant_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 input_quant: FakeQuantizer, weight_quant: FakeQuantizer) -> torch.Tensor:
    """y = q(x) @ q(w)^T + b: in integer form where it has one, plain fake quantization otherwise."""
    if integer_form(input_quant, weight_quant) and not learned(input_quant, weight_quant):
        y = QuantMatmul.apply(x, weight, input_quant, weight_quant)
        return y if bias is None else y + bias
    return F.linear(input_quant(x), weight_quant(weight), bias)


CODES = {  # scheme -> its codes function, and whether it takes a bit width
    "symmetric": (symmetric_codes, True),
    "asymmetric": (asymmetric_codes, True),
    "ternary": (ternary_codes, False),
    "binary": (binary_codes, False),
}


class Quantizer(FakeQuantizer):
    """One fake-quantizer with its settings. A module (so `print(model)` shows where each one
    sits) but stateless: no parameters, no buffers, so state_dict keys are unchanged."""

    def __init__(self, scheme: str, bits: int, per_row: bool = False, clip: float | None = None):
        super().__init__()
        self.codes_fn, self.takes_bits = CODES[scheme]
        self.scheme, self.bits, self.per_row, self.clip = scheme, bits, per_row, clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad):  # inference: the same values, no graph
            # (an autograd.Function call, and a chain of small ops, cost more than the maths at decoding sizes)
            if self.scheme == "symmetric" and not self.per_row and x.dtype == torch.float32:
                return fake_symmetric(x, self.bits, self.clip)[0]
            return dequantize(*self.codes(x))
        return FakeQuant.apply(x, self)

    def codes(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, ...]:
        """(codes, scale[, offset]): exactly what forward dequantizes, for export.

        Under bf16 autocast the input of a quantizer may be bfloat16; its codes and scales are
        computed in float32 all the same: with 8 significant bits, x / scale in bfloat16 is off by up
        to a quarter of a step near code 127, enough to round to the wrong code.
        dtype (symmetric only): the codes as whole-number floats, for a matmul that reads them so."""
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        if dtype is not None and self.scheme == "symmetric":
            return symmetric_codes(x, self.bits, self.per_row, self.clip, dtype=dtype)
        # read at each call: a clip set after construction (a calibrated one) is the clip used
        return self.codes_fn(x, *((self.bits,) if self.takes_bits else ()), self.per_row, self.clip)

    def calibrate(self, magnitudes: torch.Tensor, percentile: float) -> float:
        """Clamp from now on at the `percentile` of the |x| values seen (a calibrated clamp, taken
        from the activations of a model that trains well, instead of a fixed +-2.5)."""
        if len(magnitudes) > 2**24:  # torch.quantile's limit; an even subsample keeps the tail's shape
            keep = torch.randperm(len(magnitudes), generator=torch.Generator().manual_seed(0))[: 2**24]
            magnitudes = magnitudes[keep]
        self.clip = float(torch.quantile(magnitudes.float(), percentile / 100))
        return self.clip

    def extra_repr(self) -> str:
        return f"{self.scheme}, bits={self.bits}, per_row={self.per_row}, clip={self.clip}"
