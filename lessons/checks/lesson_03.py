"""Lesson 03's exercise checks: BART's shift-right, and mBART's pre-LN encoder layer."""

from __future__ import annotations

import torch
from torch.testing import assert_close

import minidq.model as M
from minidq import Bart, BartConfig


def check_shift_tokens_right(shift_tokens_right) -> None:
    """shift_tokens_right(labels, pad_token_id, decoder_start_token_id): the labels one place to
    the right, the start token in front, every -100 turned into the pad id."""
    got = shift_tokens_right(torch.tensor([[0, 5, 2, -100]]), 1, 2)
    assert torch.equal(got, torch.tensor([[2, 0, 5, 2]])), f"[[0, 5, 2, -100]] -> {got.tolist()}, expected [[2, 0, 5, 2]]"
    got = shift_tokens_right(torch.tensor([[0, 5, -100, -100]]), 1, 2)
    assert torch.equal(got, torch.tensor([[2, 0, 5, 1]])), f"a -100 that moves in must become the pad id: {got.tolist()}"
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        labels = torch.randint(3, 99, (3, 7), generator=g)
        labels[1, 5:] = -100
        labels[2, 2:] = -100
        before = labels.clone()
        assert torch.equal(shift_tokens_right(labels, 1, 2), M.shift_tokens_right(labels, 1, 2))
        assert torch.equal(labels, before), "the labels themselves must not change"


def check_pre_ln_encoder_layer(pre_ln_encoder_layer) -> None:
    """pre_ln_encoder_layer(x, layer, mask=None): x = x + attn(LN1(x)); x = x + ffn(LN2(x)), with
    the weights of a minidq mBART EncoderLayer, compared with that layer (random LayerNorms)."""
    torch.manual_seed(1)
    config = BartConfig(model_type="mbart", vocab_size=99, d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, max_position_embeddings=64)
    layer = Bart(config).encoder.layers[0].eval()
    assert layer.pre_ln
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))              # LayerNorm gains and biases away from 1 and 0
        x = 3 * torch.randn(2, 6, 32)
        pad = M.additive_mask(torch.tensor([[1] * 6, [1] * 4 + [0] * 2])[:, None, None, :], torch.float32)
        assert_close(pre_ln_encoder_layer(x, layer, pad), layer(x, pad)[0])
        assert_close(pre_ln_encoder_layer(x, layer), layer(x, None)[0])
