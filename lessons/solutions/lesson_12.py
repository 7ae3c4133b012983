"""Solutions to the exercises of lesson 12 (integer inference)."""

import torch


def int8_linear_per_tensor(x: torch.Tensor, w_codes: torch.Tensor, w_scale: torch.Tensor,
                           bias: torch.Tensor, clip: float = 2.5) -> torch.Tensor:
    """DQ-BART's per-tensor activation scale: one scale min(max|x|, clip) / 127 for the whole input,
    int8 codes, int8 x int8 -> int32 sums, then the two scales and the bias."""
    x_scale = x.abs().amax().clamp(max=clip) / 127
    x_codes = torch.round(x / x_scale).clamp(-127, 127).to(torch.int8)
    acc = x_codes.to(torch.int32) @ w_codes.to(torch.int32).T          # (M, N) exact integer sums
    return acc.to(torch.float32) * (x_scale * w_scale) + bias


def int8_linear_per_row_weight(x: torch.Tensor, w_codes: torch.Tensor, w_scale: torch.Tensor,
                               bias: torch.Tensor, clip: float = 2.5) -> torch.Tensor:
    """Per-token input scales (M, 1) and per-output-row weight scales (N, 1): the scale of output
    (m, n) is sx[m] * sw[n], an outer product applied once to the int32 sums."""
    x_scale = x.abs().amax(dim=-1, keepdim=True).clamp(max=clip) / 127  # (M, 1)
    x_codes = torch.round(x / x_scale).clamp(-127, 127).to(torch.int8)
    acc = x_codes.to(torch.int32) @ w_codes.to(torch.int32).T          # (M, N)
    return acc.to(torch.float32) * (x_scale * w_scale.reshape(1, -1)) + bias


def int8_linear_asymmetric(x: torch.Tensor, w_codes: torch.Tensor, w_scale: torch.Tensor,
                           bias: torch.Tensor) -> torch.Tensor:
    """Per-token uint8 input codes with a zero point (the range min(x, 0)..max(x, 0) onto 0..255),
    int32 sums of the raw uint8 codes, the zero point folded out with the weight's row sums."""
    lo = x.amin(dim=-1, keepdim=True).clamp(max=0)                        # (M, 1)
    hi = x.amax(dim=-1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / 255
    zero = torch.round(-lo / scale)                                       # (M, 1): the code of 0.0
    u = (torch.round(x / scale) + zero).clamp(0, 255).to(torch.int32)    # (M, K) uint8 codes
    cw = w_codes.to(torch.int32)
    acc = u @ cw.T - zero.to(torch.int32) * cw.sum(dim=1)                 # (M, N): sum (u - z) cw
    return acc.to(torch.float32) * (scale * w_scale.reshape(1, -1)) + bias
