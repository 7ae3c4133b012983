"""Solutions to the exercises of lesson 11 (integer inference)."""

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


def max_abs_sum(K: int, x_bits: int = 8, w_levels: int = 1) -> int:
    """The largest |sum_k cx[k] * cw[k]| over K terms, with input codes in +-(2^(x_bits-1) - 1) and
    weight codes in +-w_levels (1 for ternary, 127 for 8-bit): what the accumulator must hold."""
    return K * (2 ** (x_bits - 1) - 1) * w_levels
