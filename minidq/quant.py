"""Where quantizers go: the paper's W-E-A bits as a config, and the rewrite of a model that puts them there.

`quantize(model, QuantConfig(...))` swaps every linear layer of the encoder and decoder for a
QuantLinear (weights at W bits, inputs at A bits) and the shared embedding for a QuantEmbedding
(E bits), and fills each attention's Q, K, V and probability slots (A bits). The parameters stay
the very same objects: the model trains its full-precision latent weights through the quantizers
of minidq.fakequant (dynamic max-abs or TWN, DQ-BART's) or minidq.learned (LSQ, elastic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError
from .fakequant import FakeQuantizer, NoQuant, Quantizer, quant_linear
from .learned import LSQ, Elastic

if TYPE_CHECKING:  # model.py and pretrained.py import this module
    from .model import Bart

ALLOWED_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 32)  # codes fit in one byte; 32 = full precision (off)
ACT_SCALES = ("tensor", "token")
WEIGHT_METHODS = ("max", "lsq")
ACT_METHODS = ("max", "lsq", "elastic")


# ---------------------------------------------------------------------------------------------
# Configuration: the paper's W-E-A bits.

@dataclass(frozen=True)
class QuantConfig:
    weight_bits: int = 8           # W: every nn.Linear in the encoder/decoder layers (q/k/v/out_proj, fc1, fc2)
    embedding_bits: int = 8        # E: the shared token embedding, which is also the LM head
    activation_bits: int = 8       # A: inputs of those linears, and Q, K, V and the attention probabilities
    clip_val: float | None = 2.5   # clamp weights and activations to +-clip_val first (DQ-BART); None: no clamp
    weight_per_row: bool = False   # one scale per output row of a linear weight (DQ-BART: one per tensor)
    embedding_per_row: bool = True  # one scale per token's embedding row (as DQ-BART)
    ternary: bool = True           # 2-bit weights/embeddings use TWN (as DQ-BART); False: symmetric 2-bit grid
    act_scale: str = "tensor"      # activation scales: "tensor" (DQ-BART: one per tensor, so an answer
                                   # depends on the batch and cache) or "token" (one per row: per token for
                                   # linear inputs, per token and head for Q/K/V, per query for probabilities)
    weight_method: str = "max"     # weight/embedding scales: "max" (DQ-BART: max-abs, TWN at 2 bits, mean|w|
                                   # at 1) or "lsq" (learned step size, minidq.learned; 2 bits and up; at 2 bits
                                   # a learned ternary grid, `ternary` unused)
    act_method: str = "max"        # activation scales: "max" (dynamic, DQ-BART), "lsq" (learned step) or
                                   # "elastic" (TBT: learned scale and offset); learned ones are per tensor

    def __post_init__(self) -> None:
        for name in ("weight_bits", "embedding_bits", "activation_bits"):
            bits = getattr(self, name)
            if bits not in ALLOWED_BITS:
                raise ConfigError(f"{name}: {bits!r} is not allowed (use 1..8, or 32 for full precision)")
        if self.activation_bits == 1:
            raise ConfigError("activation_bits: 1 is not allowed (a symmetric grid needs at least 2 bits)")
        if self.clip_val is not None and not self.clip_val > 0:
            raise ConfigError(f"clip_val: {self.clip_val!r} must be positive (or None for no clamp)")
        if self.act_scale not in ACT_SCALES:
            raise ConfigError(f"act_scale: {self.act_scale!r} is not one of {ACT_SCALES}")
        if self.weight_method not in WEIGHT_METHODS:
            raise ConfigError(f"weight_method: {self.weight_method!r} is not one of {WEIGHT_METHODS}")
        if self.act_method not in ACT_METHODS:
            raise ConfigError(f"act_method: {self.act_method!r} is not one of {ACT_METHODS}")
        if self.weight_method == "lsq" and 1 in (self.weight_bits, self.embedding_bits):
            raise ConfigError("weight_method: 'lsq' needs at least 2 bits (a symmetric grid); 1 bit is binary")
        if self.act_method != "max" and self.act_scale != "tensor":
            raise ConfigError(f"act_scale: {self.act_scale!r} is for dynamic scales; a learned "
                              f"({self.act_method}) scale is one per tensor, fixed at inference")

    @classmethod
    def parse(cls, text: str, **options) -> "QuantConfig":
        """'2-2-8' -> QuantConfig(weight_bits=2, embedding_bits=2, activation_bits=8, **options)."""
        parts = text.strip().split("-")
        if len(parts) != 3:
            raise ConfigError(f"quantization {text!r}: expected W-E-A bits such as '2-2-8' or '8-8-8'")
        bits = []
        for name, part in zip(("weight", "embedding", "activation"), parts):
            if not part.strip().isdecimal():  # isdigit() would pass "²", which int() refuses
                raise ConfigError(f"quantization {text!r}: {name} bits {part!r} is not a whole number")
            bits.append(int(part))
        try:
            return cls(*bits, **options)
        except ConfigError as e:
            raise ConfigError(f"quantization {text!r}: {e}") from None

    def __str__(self) -> str:
        return f"{self.weight_bits}-{self.embedding_bits}-{self.activation_bits}"

    def weight_quantizer(self, bits: int, per_row: bool, weight: torch.Tensor | None = None) -> FakeQuantizer:
        """Binary at 1 bit, TWN at 2 (unless ternary=False), symmetric max-abs otherwise; 32: none.
        weight_method="lsq": a learned step, one per tensor or per row of `weight` (on its device)."""
        if bits == 32:
            return NoQuant()
        if self.weight_method == "lsq":
            return LSQ(bits, per_row, rows=len(weight) if per_row else 1,
                       device=weight.device if weight is not None else None)
        scheme = "binary" if bits == 1 else "ternary" if bits == 2 and self.ternary else "symmetric"
        return Quantizer(scheme, bits, per_row, self.clip_val)

    def activation_quantizer(self, clip_scale: float | None = 1.0) -> FakeQuantizer:
        """Dynamic (scale from the tensor's own max|x|, or each row's: act_scale), symmetric, as
        DQ-BART. clip_scale widens the clamp; None: no clamp."""
        if self.activation_bits == 32:
            return NoQuant()
        if self.act_method != "max":  # learned: the scale is the clip
            return LSQ(self.activation_bits) if self.act_method == "lsq" else Elastic(self.activation_bits)
        clip = None if self.clip_val is None or clip_scale is None else self.clip_val * clip_scale
        return Quantizer("symmetric", self.activation_bits, per_row=self.act_scale == "token", clip=clip)


# ---------------------------------------------------------------------------------------------
# Quantized modules: the same parameters as nn.Linear / nn.Embedding, quantized on every use.

class QuantWeight:
    """What QuantLinear and QuantEmbedding share: a latent weight and its quantizer."""

    weight: nn.Parameter
    weight_quant: FakeQuantizer

    def quantized_weight(self) -> torch.Tensor:
        return self.weight_quant(self.weight)

    def replace_weight(self, weight: torch.Tensor, quantizer: FakeQuantizer) -> None:
        """A new frozen Parameter (minidq.deploy.freeze), so that latent weights held elsewhere (an
        optimizer, a teacher) are untouched."""
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.weight_quant = quantizer


class QuantLinear(QuantWeight, nn.Linear):
    """nn.Linear whose weight and input are fake-quantized on every forward.

    `weight` stays the full-precision latent parameter that the optimizer updates."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 weight_quant: FakeQuantizer | None = None, input_quant: FakeQuantizer | None = None,
                 device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self.weight_quant = weight_quant if weight_quant is not None else NoQuant()
        self.input_quant = input_quant if input_quant is not None else NoQuant()

    @classmethod
    def from_linear(cls, linear: nn.Linear, weight_quant: FakeQuantizer, input_quant: FakeQuantizer) -> "QuantLinear":
        """Wrap an existing layer, reusing its very Parameter objects (no copy)."""
        q = cls(linear.in_features, linear.out_features, linear.bias is not None,
                weight_quant, input_quant, device="meta")
        q.weight, q.bias = linear.weight, linear.bias
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return quant_linear(x, self.weight, self.bias, self.input_quant, self.weight_quant)


class QuantEmbedding(QuantWeight, nn.Embedding):
    """nn.Embedding whose table is fake-quantized on every lookup and, tied, in the LM head.

    The LM head is a linear layer like the others, so its input is quantized too (`input_quant`):
    then an integer machine can compute it as int8 x int8 (see minidq.deploy.intinfer)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 weight_quant: FakeQuantizer | None = None, input_quant: FakeQuantizer | None = None,
                 device=None, dtype=None):
        super().__init__(num_embeddings, embedding_dim, padding_idx, device=device, dtype=dtype)
        self.weight_quant = weight_quant if weight_quant is not None else NoQuant()
        self.input_quant = input_quant if input_quant is not None else NoQuant()

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding, weight_quant: FakeQuantizer,
                       input_quant: FakeQuantizer) -> "QuantEmbedding":
        q = cls(embedding.num_embeddings, embedding.embedding_dim, embedding.padding_idx,
                weight_quant, input_quant, device="meta")
        q.weight = embedding.weight
        return q

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        q = self.weight_quant
        if isinstance(q, Quantizer) and q.per_row:
            # One scale per token row: quantizing the rows looked up equals looking up the quantized
            # table, values and STE gradient alike, at a fraction of the work (BART-base: 50,265 rows).
            return q(F.embedding(ids, self.weight, self.padding_idx))
        return F.embedding(ids, self.quantized_weight(), self.padding_idx)

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """The tied LM head's scores (B, T, V), before final_logits_bias."""
        return quant_linear(hidden, self.weight, None, self.input_quant, self.weight_quant)


def quantize(model: Bart, cfg: QuantConfig | str) -> Bart:
    """Quantize `model` in place, DQ-BART style, and return it.

    Swapped: every nn.Linear in the layers (weights at W bits, inputs at A bits) and the shared
    token embedding (E bits), which the encoder, decoder and LM head all use. Filled: each
    attention's Q, K, V and probabilities slots (A bits). Kept in full precision, as in the
    paper's accounting: positional embeddings, LayerNorms, biases, final_logits_bias.

    The LM head differs from DQ-BART's code, which leaves it an unquantized nn.Linear: ours uses
    the quantized embedding (what is stored is what is used) and quantizes its input at A bits
    without a clamp (that input was never clamped in training, and its range is wider than 2.5),
    so that the head too runs as int8 x int8 on an integer machine.

    The parameters are the same objects as before, so state_dict keys, save_pretrained and an
    optimizer built earlier all keep working. Calling it again re-quantizes with the new config.
    """
    cfg = QuantConfig.parse(cfg) if isinstance(cfg, str) else cfg
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, QuantLinear.from_linear(
                    child, cfg.weight_quantizer(cfg.weight_bits, cfg.weight_per_row, child.weight),
                    cfg.activation_quantizer()))
    for module in model.attention_modules():
        # DQ-BART quantizes the query after multiplying it by head_dim^-0.5; our slot sees it
        # before, so the clamp widens by 1/scaling to cut at the same values.
        # Probabilities lie in [0, 1]: a symmetric grid leaves its negative half unused (one bit
        # wasted; an unsigned grid would be twice as fine). We follow DQ-BART's code here.
        module.set_activation_quantizers(q=cfg.activation_quantizer(clip_scale=1 / module.scaling),
                                         k=cfg.activation_quantizer(), v=cfg.activation_quantizer(),
                                         probs=cfg.activation_quantizer())
    shared = QuantEmbedding.from_embedding(
        model.shared, cfg.weight_quantizer(cfg.embedding_bits, cfg.embedding_per_row, model.shared.weight),
        cfg.activation_quantizer(clip_scale=None))
    model.tie_embedding(shared)
    model.mark_quantized(cfg)
    return model.to(model.shared.weight.device)  # learned activation scales join the model's device
