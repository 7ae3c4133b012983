"""Lesson 02 exercises: solutions. While a notebook's exercise is still its stub, `attempt` checks
the answer of the same name here instead, so the notebook runs top to bottom."""

from __future__ import annotations

import torch


def cached_causal_bias(T: int, past_len: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive causal mask for T new queries after past_len cached tokens: shape (T, past_len + T),
    0 where query i (at position past_len + i) may see key j (j <= past_len + i), else finfo.min."""
    keys = torch.arange(past_len + T)                  # (past + T,)
    queries = torch.arange(past_len, past_len + T)     # (T,) the positions of the new tokens
    keep = keys[None, :] <= queries[:, None]           # (T, past + T)
    return (~keep).to(dtype) * torch.finfo(dtype).min


def decoder_self_bias(decoder_attention_mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The decoder's self-attention bias (B, 1, T, T): causal and padding masks combined as
    booleans, then turned into one additive bias, so no entry is ever -inf."""
    T = decoder_attention_mask.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()                       # (T, T) key j <= query i
    keep = causal & decoder_attention_mask[:, None, None, :].bool()          # (B, 1, T, T)
    return (~keep).to(dtype) * torch.finfo(dtype).min
