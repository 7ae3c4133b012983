"""Checks for the exercises of lesson 08 (quantizing BART). Each builds its own inputs (a small
random BART where a model is needed) and is made of asserts."""

from __future__ import annotations

import copy

import torch

from minidq import Bart, BartConfig
from minidq.fakequant import Quantizer
from minidq.quant import QuantConfig, quantize


def _activations(seed: int = 0) -> torch.Tensor:
    """Activation-like values: mostly within +-2, with a few outliers up to about 10."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 96, generator=g) * 0.8 + 0.2
    outliers = torch.rand(64, 96, generator=g) < 0.005
    return torch.where(outliers, x * 8, x)


def check_percentile_clip_quant(percentile_clip_quant) -> None:
    """percentile_clip_quant(x, bits, quantile): clamp at the quantile of |x|, then the symmetric grid."""
    for seed in (0, 1):
        x = _activations(seed)
        for bits, q in ((8, 0.999), (8, 0.99), (4, 0.95), (6, 0.5)):
            clip = torch.quantile(x.abs().flatten(), q).item()
            want = Quantizer("symmetric", bits, clip=clip)(x)
            got = percentile_clip_quant(x, bits, q)
            assert got.shape == x.shape
            torch.testing.assert_close(got, want, msg=f"{bits} bits, quantile {q}")
        # quantile 1.0: the clamp is max|x|, so nothing is cut: minidq's quantizer without a clamp
        torch.testing.assert_close(percentile_clip_quant(x, 8, 1.0), Quantizer("symmetric", 8)(x))
    # a one-sided tensor: the clamp is two-sided (+-clip), from |x|
    x = torch.linspace(-8.0, 1.0, 1000)
    torch.testing.assert_close(percentile_clip_quant(x, 8, 0.9),
                               Quantizer("symmetric", 8, clip=torch.quantile(x.abs(), 0.9).item())(x))


def _tiny_bart(seed: int = 0) -> Bart:
    torch.manual_seed(seed)
    config = BartConfig(vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        max_position_embeddings=32, dropout=0.0)
    return Bart(config).eval()


def check_ternary_except(ternary_except) -> None:
    """ternary_except(model, keep): every nn.Linear weight ternary except under the keep prefixes, in a copy."""
    model = _tiny_bart()
    before = copy.deepcopy(model.state_dict())
    ids, labels = torch.randint(3, 64, (2, 10)), torch.randint(3, 64, (2, 6))

    everything = ternary_except(model, [])
    ref = quantize(copy.deepcopy(model), QuantConfig(weight_bits=2, embedding_bits=32, activation_bits=32))
    with torch.no_grad():
        torch.testing.assert_close(everything(ids, labels=labels).logits, ref(ids, labels=labels).logits)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), f"the model passed in was changed ({name}): work on a copy"

    for keep in (["encoder.layers.1."], ["decoder.layers.0.self_attn.", "encoder.layers.0.fc1"]):
        mixed = dict(ternary_except(model, keep).named_modules())
        for name, module in model.named_modules():
            if not isinstance(module, torch.nn.Linear):
                continue
            w = mixed[name].weight
            if any(name.startswith(p) for p in keep):
                assert torch.equal(w, module.weight), f"{name} is under a kept prefix but was changed"
            else:
                assert w.unique().numel() <= 3, f"{name} is not under {keep} but is not ternary"
        assert torch.equal(mixed["shared"].weight, model.shared.weight), "the embedding is not an nn.Linear: leave it"
