"""Lesson 03 exercises: solutions. While a notebook's exercise is still its stub, `attempt` checks
the answer of the same name here instead, so the notebook runs top to bottom."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """BART's decoder input: labels shifted right by one, decoder_start_token_id in front, the
    ignored positions (-100) turned into padding."""
    shifted = torch.full_like(labels, pad_token_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    shifted[shifted == -100] = pad_token_id
    return shifted


def _attention(x, attn, mask=None):
    """Lesson 02's self-attention, with the weights of a minidq Attention module."""
    B, T, C = x.shape
    H, hd = attn.num_heads, C // attn.num_heads

    def heads(t):
        return t.view(B, T, H, hd).transpose(1, 2)                      # (B, H, T, hd)

    q, k, v = heads(attn.q_proj(x)), heads(attn.k_proj(x)), heads(attn.v_proj(x))
    scores = q @ k.transpose(-1, -2) * hd ** -0.5                        # (B, H, T, T)
    if mask is not None:
        scores = scores + mask
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)      # (B, T, C)
    return attn.out_proj(out)


def pre_ln_encoder_layer(x: torch.Tensor, layer, mask: torch.Tensor | None = None) -> torch.Tensor:
    """mBART's (pre-LN) encoder layer: x = x + attn(LN(x)); x = x + ffn(LN(x)); no LayerNorm after
    the sum. `layer` is a minidq EncoderLayer whose weights are used (in eval mode: no dropout)."""
    ln1, ln2 = layer.self_attn_layer_norm, layer.final_layer_norm
    x = x + _attention(F.layer_norm(x, ln1.normalized_shape, ln1.weight, ln1.bias, ln1.eps), layer.self_attn, mask)
    h = F.layer_norm(x, ln2.normalized_shape, ln2.weight, ln2.bias, ln2.eps)
    return x + layer.fc2(F.gelu(layer.fc1(h)))
