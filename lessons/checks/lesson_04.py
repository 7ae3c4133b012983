"""Lesson 04's exercise checks: n-gram blocking for one sequence, and greedy decoding with min_length."""

from __future__ import annotations

import torch

import minidq.generate as G
from minidq import Bart, BartConfig


def check_banned_next_tokens(banned_next_tokens) -> None:
    """banned_next_tokens(sequence, n): the tokens that, appended to `sequence`, would complete an
    n-gram already in it (the last n - 1 tokens plus the next one)."""
    assert banned_next_tokens([2, 0, 7, 7, 8, 7, 7], 3) == {8}, "'7 7' was followed by 8 before"
    assert banned_next_tokens([5, 6, 5], 2) == {6}
    assert banned_next_tokens([5, 6, 5, 7, 5], 2) == {6, 7}, "every earlier occurrence of the prefix counts"
    assert banned_next_tokens([1, 2, 3], 4) == set(), "too short to hold an n-gram"
    assert banned_next_tokens([4, 4, 4], 1) == {4}, "n = 1: every token already present"
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        seq = torch.randint(4, 9, (1, int(torch.randint(4, 15, (1,), generator=g))), generator=g)
        for n in (2, 3, 4):
            expected = set(G.repeated_ngram_tokens(seq, n, 14)[0].nonzero().flatten().tolist())
            got = banned_next_tokens(seq[0].tolist(), n)
            assert got == expected, f"{seq[0].tolist()}, n={n}: {got}, expected {expected}"


def eager_model(eos_bias: float, seed: int = 0) -> Bart:
    """A random tiny BART (digits 4-13, BART's special ids) that often wants to stop early: its
    final_logits_bias pushes </s> up, so min_length has something to block."""
    torch.manual_seed(seed)
    config = BartConfig(vocab_size=14, d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, max_position_embeddings=32, dropout=0.0)
    model = Bart(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(10)                                  # sharper, more varied distributions
        model.final_logits_bias[0, config.eos_token_id] = eos_bias
    return model


def check_greedy_min_length(greedy_min_length, models=None) -> None:
    """greedy_min_length(model, input_ids, attention_mask, max_length, min_length, pad_id, eos_id)
    must give generate's tokens: </s> blocked while the sequence (start token included) is shorter
    than min_length, forced at length max_length - 1, pad_id after a row's </s>."""
    models = models or [eager_model(bias, seed) for bias, seed in [(1.0, 0), (3.0, 1), (5.0, 2)]]
    ids = torch.randint(4, 14, (30, 8), generator=torch.Generator().manual_seed(1))
    ids[:, 0], ids[:, -1] = 0, 2
    mask = torch.ones_like(ids)
    mask[::3, 6:] = 0                                   # some rows padded
    ids[::3, 6:] = 1
    for m in models:
        for min_length, max_length in [(0, 12), (3, 12), (5, 9), (8, 12), (11, 12)]:
            mine = greedy_min_length(m, ids, mask, max_length, min_length, 1, 2)
            theirs = m.generate(ids, mask, max_length=max_length, min_length=min_length)
            assert mine.shape == theirs.shape and torch.equal(mine, theirs), (
                f"min_length={min_length}, max_length={max_length}: first differing row "
                f"{mine[(mine != theirs).any(1)][0].tolist() if mine.shape == theirs.shape else mine.shape}")
