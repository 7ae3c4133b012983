"""Frozen quantized models: each quantized weight replaced by its dequantized value, once.

A fake-quantized model re-quantizes its latent fp32 weights at every forward (the embedding
matrix at every decoding step). For inference that work is wasted: `freeze` stores what the
quantizers return, bit for bit, and swaps each weight quantizer for a `FrozenQuantizer`, which
is the identity in the forward and remembers the integer codes and scales, so that the frozen
model packs (minidq.deploy.packed_file) into the very same tensors. Activation quantizers stay: they
are computed at run time.
"""

from __future__ import annotations

import torch
from torch import nn

from ..fakequant import FakeQuantizer, dequantize
from ..model import Bart
from ..quant import QuantEmbedding, QuantLinear


class FrozenQuantizer(FakeQuantizer):
    """Takes a Quantizer's place once its weight holds the dequantized values: the forward is
    the identity (the weight already sits on the grid) and `codes` returns the stored codes and
    scales, so a frozen or loaded model packs again into the very same tensors."""

    def __init__(self, scheme: str, bits: int, per_row: bool, codes: tuple[torch.Tensor, ...]):
        super().__init__()
        self.scheme, self.bits, self.per_row = scheme, bits, per_row
        self.stored = codes  # a plain attribute: not a buffer, so the state_dict is unchanged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def codes(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.stored

    def extra_repr(self) -> str:
        return f"{self.scheme}, bits={self.bits}, per_row={self.per_row}, frozen"


def weight_quantizers(model: nn.Module) -> dict[str, FakeQuantizer]:
    """'<module>.weight' -> its (possibly frozen) weight quantizer; the tied embedding once."""
    return {f"{name}.weight": m.weight_quant for name, m in model.named_modules()
            if isinstance(m, (QuantLinear, QuantEmbedding)) and m.weight_quant.scheme is not None}


@torch.no_grad()
def freeze(model: Bart) -> Bart:
    """Replace each quantized weight by its dequantized value, in place; identical outputs.

    For inference: the latent fp32 weights are dropped, so a frozen model cannot train further."""
    for name, q in weight_quantizers(model).items():
        if not isinstance(q, FrozenQuantizer):
            module = model.get_submodule(name.removesuffix(".weight"))
            codes = tuple(t.detach() for t in q.codes(module.weight))
            # dequantize(*codes) is what q(module.weight) returns, bit for bit, at half the cost
            module.replace_weight(dequantize(*codes), FrozenQuantizer(q.scheme, q.bits, q.per_row, codes))
    return model


def stored_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, once: the tied embedding appears as `shared.weight` only. A
    weight quantizer's learned step (LSQ) is not one of them: it is stored as that weight's scale."""
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    return {k: v for k, v in tensors.items() if ".weight_quant." not in k}
