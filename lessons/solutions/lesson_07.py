"""Solutions to the exercises of lesson 07 (quantizers and the straight-through estimator)."""

import torch


def asymmetric_quant(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Min-max (asymmetric) fake quantization of the whole tensor: 2^bits levels spread over
    [min, max], x ~ codes * scale + min with codes in 0 .. 2^bits - 1. Returns the dequantized values."""
    levels = 2 ** bits - 1
    lo, hi = x.min(), x.max()
    scale = (hi - lo) / levels
    if scale == 0:  # a constant tensor: nothing to spread
        scale = torch.ones_like(scale)
    codes = torch.round((x - lo) / scale).clamp(0, levels)
    return codes * scale + lo


def per_row_symmetric(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric max-abs fake quantization with one scale per row (per vector along the last dim):
    scale = max|row| / (2^(bits-1) - 1), so a large value only coarsens its own row."""
    qmax = 2 ** (bits - 1) - 1
    scale = x.abs().amax(dim=-1, keepdim=True) / qmax          # (..., 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row: any scale works
    return torch.round(x / scale).clamp(-qmax, qmax) * scale


class BinarySTE(torch.autograd.Function):
    """1-bit weights, sign(w) * mean|w| (sign(0) counts as +1), after clamping to +-clip; the
    backward is the straight-through estimator: the gradient passes where |w| <= clip, 0 elsewhere."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, clip: float) -> torch.Tensor:
        ctx.save_for_backward(w)
        ctx.clip = clip
        w = w.clamp(-clip, clip)
        alpha = w.abs().mean()
        return torch.where(w >= 0, 1.0, -1.0) * alpha

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= ctx.clip), None
