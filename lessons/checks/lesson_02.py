"""Lesson 02's exercise checks: the causal mask after a KV cache, and the decoder's combined mask."""

from __future__ import annotations

import torch
from torch.testing import assert_close

import minidq.model as M

FMIN = torch.finfo(torch.float32).min


def check_cached_causal_bias(cached_causal_bias) -> None:
    """cached_causal_bias(T, past_len=0) -> (T, past_len + T): 0 where new query i (at position
    past_len + i) may see key j (j <= past_len + i), finfo.min elsewhere."""
    keep = torch.ones(5, 5, dtype=torch.bool).tril()
    assert torch.equal(cached_causal_bias(5), M.additive_mask(keep, torch.float32)), "no cache: lesson 2's causal mask"
    assert torch.equal(cached_causal_bias(1, 5), torch.zeros(1, 6)), "one new token after 5 cached ones sees all 6"
    b = cached_causal_bias(2, 3)
    assert b.shape == (2, 5), f"shape {tuple(b.shape)}: expected (T, past_len + T) = (2, 5)"
    assert (b[0, :4] == 0).all() and b[0, 4] == FMIN and (b[1] == 0).all(), f"cached_causal_bias(2, 3) =\n{b}"
    assert torch.isfinite(b).all(), "use finfo.min, not -inf"
    # the real test: a sequence fed in two chunks through minidq's KV cache equals the full pass
    torch.manual_seed(0)
    attn = M.Attention(d_model=16, num_heads=4).eval()
    x = torch.randn(2, 7, 16)
    with torch.no_grad():
        full, _ = attn(x, mask=cached_causal_bias(7))
        cache = {}
        first, _ = attn(x[:, :4], mask=cached_causal_bias(4), cache=cache)
        second, _ = attn(x[:, 4:], mask=cached_causal_bias(3, 4), cache=cache)
    assert_close(torch.cat([first, second], dim=1), full)


def check_decoder_self_bias(decoder_self_bias) -> None:
    """decoder_self_bias(decoder_attention_mask) -> (B, 1, T, T): the decoder's causal mask and
    its padding mask combined as booleans and turned into one additive bias (0 keep, finfo.min
    drop), finite everywhere, even on rows where every key is dropped."""
    mask = torch.tensor([[1, 1, 1, 1, 1],        # no padding
                         [1, 1, 1, 0, 0],        # right padding
                         [0, 0, 1, 1, 1]])       # left padding: queries 0 and 1 see no real key
    b = decoder_self_bias(mask)
    assert b.shape == (3, 1, 5, 5), f"shape {tuple(b.shape)}: expected (B, 1, T, T) = (3, 1, 5, 5)"
    assert torch.isfinite(b).all(), "two finfo.min biases added overflow to -inf: combine the masks as booleans"
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    expected = M.additive_mask(causal & mask[:, None, None, :].bool(), torch.float32)
    assert torch.equal(b, expected), f"sequence 2 (left-padded) got\n{b[2, 0]}\nexpected\n{expected[2, 0]}"
    probs = b.softmax(-1)                                 # zero scores plus the bias
    assert not probs.isnan().any()
    assert probs[1, 0, 4, 3:].sum() == 0, "no query attends to a padded key"
    assert probs[0, 0, 1, 2:].sum() == 0, "no query attends to a later key"
