"""Lesson 02 exercises: solutions. The notebook imports these so CI runs its checks; delete the
import in the notebook and write your own to do the exercise."""

from __future__ import annotations

import torch


def cached_causal_bias(T: int, past_len: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive causal mask for T new queries after past_len cached tokens: shape (T, past_len + T),
    0 where query i (at position past_len + i) may see key j (j <= past_len + i), else finfo.min."""
    keys = torch.arange(past_len + T)                  # (past + T,)
    queries = torch.arange(past_len, past_len + T)     # (T,) the positions of the new tokens
    keep = keys[None, :] <= queries[:, None]           # (T, past + T)
    return (~keep).to(dtype) * torch.finfo(dtype).min


def attention_by_loop(x: torch.Tensor, params: dict, num_heads: int,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-head self-attention with an explicit loop over heads: head h uses columns
    h*hd:(h+1)*hd of the projected q, k, v; the heads' outputs are concatenated, then out_proj.
    params maps "q", "k", "v", "out" to nn.Linear-style (W, b). x (B, T, C) -> (B, T, C)."""
    def linear(t, name):
        W, b = params[name]
        return t @ W.T + b

    C = x.shape[-1]
    hd = C // num_heads
    q, k, v = linear(x, "q"), linear(x, "k"), linear(x, "v")        # (B, T, C) each
    heads = []
    for h in range(num_heads):
        cols = slice(h * hd, (h + 1) * hd)
        scores = q[..., cols] @ k[..., cols].transpose(-1, -2) * hd ** -0.5   # (B, T, T)
        if mask is not None:
            scores = scores + mask.squeeze(1) if mask.dim() == 4 else scores + mask
        heads.append(scores.softmax(-1) @ v[..., cols])                     # (B, T, hd)
    return linear(torch.cat(heads, dim=-1), "out")                          # (B, T, C)
