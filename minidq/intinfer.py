"""Integer inference: a quantized linear layer computed the way an integer machine computes it.

A fake-quantized linear (minidq.quant) rounds its input x to codes cx with scale sx (one per
tensor, or one per token) and its weight to codes cw with scale sw (one per tensor or per
output row), then multiplies the dequantized floats:
    y[m, n] = sum_k (cx[m, k] sx[m]) (cw[n, k] sw[n]) + b[n]
The scales do not depend on k, so they come out of the sum:
    y[m, n] = (sum_k cx[m, k] cw[n, k]) sx[m] sw[n] + b[n]
and what is left inside is a matrix product of small integers: int8 x int8 products summed in
int32 (`torch._int_mm`), exact, then one multiply by the scales per output. Weights of every
width (binary, ternary, 2..8-bit codes) are held as int8, unpacked once at load: a quarter of
their fp32 size in memory, and an int8 matmul is several times faster than an fp32 one on CPU.

The same holds for the tied LM head (the embedding codes are its weight) and, for the lookup,
an embedding row is dequantized on the fly from its codes. Attention's own matmuls (Q K^T and
probabilities x V) stay in float: they are small and their fake quantizers run as before.

Integer and fake paths agree to float rounding: int32 accumulation is exact while the fake
path's fp32 sums round at every addition, so logits may differ in their last bits (and a
rounding of a later activation can flip where a value sits on a boundary).
"""

from __future__ import annotations

import torch
from torch import nn

from .freeze import weight_quantizers
from .model import Bart
from .quant import QuantEmbedding, QuantLinear, Quantizer, dequantize, integer_form, rescale


def int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M, K) int8 @ (N, K)^T int8 -> (M, N) int32, exactly.

    torch._int_mm runs on CPU at any shape; on CUDA it needs M > 16 and K, N multiples of 8.
    The fallback is float64, exact here: |sum| <= K * 128^2 < 2^53 for any K below 5e11."""
    M, K = a.shape
    if hasattr(torch, "_int_mm") and (a.device.type == "cpu" or (M > 16 and K % 8 == 0 and b.shape[0] % 8 == 0)):
        return torch._int_mm(a, b.t())  # b.t(): (K, N) column-major, the layout _int_mm runs fastest with
    return (a.double() @ b.t().double()).to(torch.int32)


def int_linear(x: torch.Tensor, input_quant: Quantizer, codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (..., K) float -> (..., N) float: x's int8 codes (the very codes the fake forward
    computes) times the weight codes (N, K) in int32, then the scales as the fake forward applies them."""
    x_codes, x_scale, *x_offset = input_quant.codes(x)               # (..., K) int8; (..., 1) or ()
    acc = int_matmul(x_codes.reshape(-1, x.shape[-1]), codes)        # (M, N) int32
    y = rescale(acc.view(*x.shape[:-1], -1), x_scale, scale)         # (..., N)
    if x_offset:  # elastic input x ~ cx * sx + b: b times each weight row's sum, (N,)
        y = y + x_offset[0] * dequantize(codes.sum(-1, dtype=torch.int32), scale.reshape(-1) if scale.dim() else scale)
    return y


class IntLinear(nn.Module):
    """A QuantLinear's integer form: int8 weight codes (out, in), their scale(s), a float bias."""

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, input_quant: Quantizer):
        super().__init__()
        self.out_features, self.in_features = codes.shape
        self.register_buffer("codes", codes.to(torch.int8))  # (out, in)
        self.register_buffer("scale", scale)                  # (out, 1) per row, or ()
        self.bias = bias
        self.input_quant = input_quant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = int_linear(x, self.input_quant, self.codes, self.scale)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 x int8 -> int32"


class IntEmbedding(nn.Module):
    """A QuantEmbedding's integer form: int8 codes (V, C) and scale(s); the tied LM head as IntLinear does it."""

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, input_quant: Quantizer):
        super().__init__()
        self.num_embeddings, self.embedding_dim = codes.shape
        self.register_buffer("codes", codes.to(torch.int8))  # (V, C)
        self.register_buffer("scale", scale)                  # (V, 1) per token, or ()
        self.input_quant = input_quant

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        scale = self.scale[ids] if self.scale.dim() else self.scale  # (B, T, 1) or ()
        return dequantize(self.codes[ids], scale)  # (B, T, C), bit for bit the fake table's rows

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """The LM head's scores (..., V), before final_logits_bias."""
        return int_linear(hidden, self.input_quant, self.codes, self.scale)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8 codes"


def integer_module(module: nn.Module, codes: torch.Tensor, scale: torch.Tensor) -> nn.Module | None:
    """The integer form of a quantized linear or embedding given its weight's codes, or None
    where there is none: asymmetric weight codes (no QuantConfig makes them) or an input that
    is not quantized to a symmetric grid (A=32)."""
    input_quant = getattr(module, "input_quant", None)
    if not integer_form(input_quant, module.weight_quant):
        return None
    if isinstance(module, QuantEmbedding):
        return IntEmbedding(codes, scale, input_quant)
    if isinstance(module, QuantLinear):
        return IntLinear(codes, scale, module.bias, input_quant)
    return None


def replace(model: Bart, name: str, module: nn.Module) -> None:
    """Put `module` at `name`; the tied embedding is one module in three places."""
    if name == "shared":
        model.shared = model.encoder.embed_tokens = model.decoder.embed_tokens = module
        return
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)


@torch.no_grad()
def to_integer(model: Bart) -> Bart:
    """Swap, in place, each quantized linear and the embedding of a quantized (or frozen) model
    for its integer form; the rest stays. For inference only: the latent weights are dropped."""
    for name, q in weight_quantizers(model).items():
        path = name.removesuffix(".weight")
        module = model.get_submodule(path)
        codes, scale = q.codes(module.weight)[:2]
        fast = integer_module(module, codes.detach(), scale.detach())
        if fast is not None:
            replace(model, path, fast)
    return model.eval()
