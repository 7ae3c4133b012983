"""Checks of lesson 09's exercises: each builds its own inputs and asserts."""

from functools import lru_cache

import torch

from minidq import Bart, BartConfig
from minidq.distill import hidden_loss, make_student


def _tiny_config(**changes) -> BartConfig:
    base = dict(vocab_size=70, d_model=16, encoder_layers=3, decoder_layers=4, encoder_attention_heads=2,
                decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=40, max_position_embeddings=20)
    return BartConfig(**{**base, **changes})


@lru_cache(maxsize=None)
def _bart_base_parameters(encoder_layers: int, decoder_layers: int) -> int:
    with torch.device("meta"):
        return Bart(BartConfig(encoder_layers=encoder_layers, decoder_layers=decoder_layers)).num_parameters()


def check_student_parameters(student_parameters) -> None:
    torch.manual_seed(0)
    teacher = Bart(_tiny_config())
    for enc, dec in [(3, 4), (3, 2), (3, 1), (1, 1), (2, 3)]:
        want = make_student(teacher, enc, dec).num_parameters()
        got = student_parameters(teacher.config, enc, dec)
        assert got == want, f"{enc}-{dec} student of a tiny teacher: {got:,} parameters, built model has {want:,}"
    for enc, dec in [(6, 6), (6, 3), (6, 1)]:   # BART-base's shape, on the meta device: shapes only, no memory
        want = _bart_base_parameters(enc, dec)
        got = student_parameters(BartConfig(), enc, dec)
        assert got == want, f"BART-base {enc}-{dec}: {got:,} parameters, the model has {want:,}"


def check_hidden_loss_sum(hidden_loss_sum) -> None:
    torch.manual_seed(0)
    B, T, C = 2, 5, 4
    teacher_h = tuple(torch.randn(B, T, C) for _ in range(7))   # embeddings + 6 teacher layers
    student_h = tuple(torch.randn(B, T, C) for _ in range(4))   # embeddings + 3 student layers
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    for layer_map in ([0, 2, 5], [1, 3, 4]):
        want = hidden_loss(student_h, teacher_h, layer_map, mask, reduction="sum")
        got = hidden_loss_sum(student_h, teacher_h, layer_map, mask)
        torch.testing.assert_close(torch.as_tensor(got, dtype=want.dtype), want,
                                   msg=f"layer_map {layer_map}: {float(got):.5f}, want {want.item():.5f}")
