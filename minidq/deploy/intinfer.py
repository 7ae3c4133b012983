"""Integer inference: a quantized linear layer computed the way an integer machine computes it.

A fake-quantized linear (minidq.quant) rounds its input x to codes cx with scale sx (one per
tensor, or one per token) and its weight to codes cw with scale sw (one per tensor or per
output row), then multiplies the dequantized floats:
    y[m, n] = sum_k (cx[m, k] sx[m]) (cw[n, k] sw[n]) + b[n]
The scales do not depend on k, so they come out of the sum:
    y[m, n] = (sum_k cx[m, k] cw[n, k]) sx[m] sw[n] + b[n]
and what is left inside is a matrix product of small integers: int8 x int8 products summed in
int32, exact, then one multiply by the scales per output. Weights of every width (binary,
ternary, 2..8-bit codes) are held as int8, unpacked once at load: a quarter of their fp32 size.

Two int8 kernels compute the sums (`Int8Weight` picks one per weight, at load):
  - fbgemm, PyTorch's x86 int8 library (what `torch.ao.quantization.quantize_dynamic` runs on),
    fast on any x86 CPU with AVX2. It reads activations as uint8, so our codes enter shifted by
    +128 (0..255), and it keeps the weight in its own blocked layout. Its AVX2 kernel adds pairs
    of uint8 x int8 products in int16 (`vpmaddubsw`), which saturates at 32767: a pair is exact
    while 2 * 255 * |w| <= 32767, i.e. for weight codes |w| <= 64, every width up to 7 bits.
  - `torch._int_mm`, exact for any codes (8-bit weights reach 127), everywhere; but on a CPU
    without AVX-512 VNNI it runs a plain loop, measured here several times slower than fp32.

Where the input's scale is DQ-BART's (max-abs, one per tensor, not learned) and fbgemm is exact,
a linear is one fbgemm call and a few cheap steps (`FusedInt8Linear`): fbgemm holds the weight's
scales, is given the input's, and applies both to its sums itself; the input's codes take three
passes over the activations. The general path takes about a dozen, which at decoding sizes (a few
tokens) took longer than the matmul itself (`benchmarks/int_linear.py`).

The tied LM head is the same product with the embedding codes as its weight; an embedding row
is dequantized from its codes on lookup. Attention's own matmuls (Q K^T and probabilities x V)
stay in float: they are small, and their fake quantizers run as before.

Integer and fake paths agree to float rounding: int32 accumulation is exact while the fake
path's fp32 sums are exact only below 2^24, so logits may differ in their last bits (and a
rounding of a later activation can flip where a value sits on a boundary). fbgemm could also
quantize the input itself, given its scale, but it rounds x * (1 / s) + 128 in one fused
multiply-add, where the fake path rounds x / s: values within 2^-17 of a half-way point between
two codes then round the other way (measured: about 1 in 200,000), and a 2-bit model magnifies
each such flip layer after layer (logits 0.17 apart on the shipped teacher). So minidq computes
the codes itself and hands fbgemm codes it converts back exactly.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..fakequant import Quantizer, dequantize, fake_symmetric, integer_form, rescale, symmetric_codes
from ..model import Bart
from ..quant import QuantEmbedding, QuantLinear
from .freeze import weight_quantizers


def int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(M, K) int8 @ (N, K)^T int8 -> (M, N) int32, exactly.

    torch._int_mm runs on CPU at any shape; on CUDA it needs M > 16 and K, N multiples of 8.
    The fallback is float64, exact here: |sum| <= K * 128^2 < 2^53 for any K below 5e11."""
    M, K = a.shape
    if hasattr(torch, "_int_mm") and (a.device.type == "cpu" or (M > 16 and K % 8 == 0 and b.shape[0] % 8 == 0)):
        return torch._int_mm(a, b.t())  # b.t(): (K, N) column-major, the layout _int_mm runs fastest with
    return (a.double() @ b.t().double()).to(torch.int32)


FBGEMM_MAX_CODE = 64  # 2 * 255 * 64 = 32640 <= 32767: no int16 pair saturates (module docstring)


def fbgemm_available(codes: torch.Tensor) -> bool:
    """Whether fbgemm can multiply by these weight codes exactly, on this machine."""
    return (codes.device.type == "cpu" and "fbgemm" in torch.backends.quantized.supported_engines
            and hasattr(torch.ops.quantized, "linear_with_input_q_dq_qweight_dq_output_fp32")
            and torch.backends.cpu.get_cpu_capability() != "DEFAULT"  # fbgemm needs AVX2 at least
            and int(codes.abs().max()) <= FBGEMM_MAX_CODE)


class Int8Weight(nn.Module):
    """A weight's int8 codes (N, K), held in the layout of the kernel that multiplies by them.

    Its forward takes activation codes (M, K) as whole-number floats (the form they are computed
    in) and returns their exact sums with the weight codes, (M, N), as float32: a float holds
    every integer below 2^24 exactly, and beyond it int32 -> float32 rounds as
    `acc.to(torch.float32)` would."""

    def __init__(self, codes: torch.Tensor):
        super().__init__()
        self.shape = tuple(codes.shape)
        self.packed = None
        if fbgemm_available(codes):
            self.packed = fbgemm_weight(codes)  # scale 1: fbgemm returns the sums; minidq applies the scales
        else:
            self.register_buffer("codes", codes.to(torch.int8))  # (N, K): _int_mm reads its transpose

    @property
    def kernel(self) -> str:
        return "fbgemm" if self.packed is not None else "_int_mm"

    def forward(self, x_codes: torch.Tensor) -> torch.Tensor:
        """(M, K) float codes -> (M, N) float32 sums of code products, exact."""
        if self.packed is not None:
            # fbgemm quantizes its input with the scale and zero point given: x / 1 + 128, exact
            # for whole numbers in -127..127, so it multiplies our very codes.
            return torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(x_codes, 1.0, 128, self.packed)
        return int_matmul(x_codes.to(torch.int8), self.codes).to(torch.float32)

    def int8_codes(self) -> torch.Tensor:
        """The int8 codes (N, K), read back from the kernel's layout where it has its own."""
        if self.packed is not None:
            return torch.ops.quantized.linear_unpack(self.packed)[0].int_repr()
        return self.codes

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """The state dict shows the codes whatever the layout (as torch.ao's quantized modules do),
        so that inspecting and counting a model's tensors see them."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "codes"] = self.int8_codes()

    def extra_repr(self) -> str:
        return f"{self.shape[1]} -> {self.shape[0]}, int8 x int8 -> int32 on {self.kernel}"


def fbgemm_weight(codes: torch.Tensor, scale: torch.Tensor | None = None):
    """The codes in fbgemm's blocked layout, with the weight's scales, by which fbgemm multiplies
    its sums itself: scale None (1 for every row) returns the bare sums."""
    n = codes.shape[0]
    scales = torch.ones(n, dtype=torch.double) if scale is None else scale.double().reshape(-1).expand(n).contiguous()
    # The warning says quantized tensors are deprecated: they are fbgemm's only entry here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantized tensor.*deprecated")
        weight = torch._make_per_channel_quantized_tensor(codes.to(torch.int8), scales,
                                                          torch.zeros(n, dtype=torch.long), 0)
        # No bias: fbgemm adds it in the same rounding as the product (measured), where the fake
        # path rounds the product, then adds; a last-bit difference there can flip a later
        # activation's code, and 2-bit models magnify such flips layer after layer.
        return torch.ops.quantized.linear_prepack(weight, None)


def fusable(input_quant: nn.Module, codes: torch.Tensor) -> bool:
    """Whether one fbgemm call can compute this linear: DQ-BART's max-abs input scale, one per
    tensor (fbgemm takes one input scale), and weight codes that fbgemm multiplies exactly."""
    return (isinstance(input_quant, Quantizer) and input_quant.scheme == "symmetric"
            and not input_quant.per_row and fbgemm_available(codes))


class FusedInt8Linear(nn.Module):
    """x W^T for a DQ-BART input quantizer (max-abs, one scale per tensor): the fake-quantized
    input (fake_symmetric: its range, codes, codes times the scale) and one fbgemm call that
    recovers the codes, sums their products with the weight's in int32 and multiplies the sums by
    the two scales: the very floats, in the same order, that symmetric_codes() and rescale()
    compute on the fake path."""

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, input_quant: Quantizer):
        super().__init__()
        self.shape = tuple(codes.shape)
        self.packed = fbgemm_weight(codes, scale)
        self.bits, self.clip = input_quant.bits, input_quant.clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_q, scale = fake_symmetric(x.reshape(-1, self.shape[1]), self.bits, self.clip)  # (M, K) codes * s
        # fbgemm's (codes * s) * (1 / s) + 128 is within 2e-5 of codes + 128, so it rounds back to
        # exactly our codes, and it scales its sums by s * sw, as rescale() does.
        y = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(x_q, scale, 128, self.packed)
        return y.view(*x.shape[:-1], self.shape[0])  # (..., N)

    def int8_codes(self) -> torch.Tensor:
        return torch.ops.quantized.linear_unpack(self.packed)[0].int_repr()

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "codes"] = self.int8_codes()

    def extra_repr(self) -> str:
        return f"{self.shape[1]} -> {self.shape[0]}, one fbgemm call (input codes, int32 sums, scales)"


def activation_codes(x: torch.Tensor, input_quant: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(codes as whole-number floats, scale, offset or None): the very codes the fake forward
    computes. DQ-BART's max-abs quantizer takes a shortcut that skips casting to int8 and back;
    learned ones (minidq.learned) give their codes, and the elastic one its offset too."""
    if isinstance(input_quant, Quantizer) and input_quant.scheme == "symmetric":  # not LSQ: its grid is learned
        codes, scale = symmetric_codes(x, input_quant.bits, input_quant.per_row, input_quant.clip, dtype=x.dtype)
        return codes, scale, None
    codes, scale, *offset = input_quant.codes(x)
    return codes.to(x.dtype), scale, offset[0] if offset else None


def int_linear(x: torch.Tensor, input_quant: nn.Module, weight: Int8Weight, scale: torch.Tensor) -> torch.Tensor:
    """x (..., K) float -> (..., N) float: x's codes times the weight codes, summed exactly, then
    the scales as the fake forward applies them."""
    x_codes, x_scale, x_offset = activation_codes(x, input_quant)
    acc = weight(x_codes.reshape(-1, x.shape[-1]))               # (M, N): exact integer sums
    y = rescale(acc.view(*x.shape[:-1], -1), x_scale, scale)     # (..., N)
    if x_offset is not None:  # elastic input x ~ cx * sx + b: b times each weight row's sum, (N,)
        row_sums = weight.int8_codes().sum(-1, dtype=torch.int32)
        y = y + x_offset * dequantize(row_sums, scale.reshape(-1) if scale.dim() else scale)
    return y


class IntLinear(nn.Module):
    """A QuantLinear's integer form: int8 weight codes (out, in), their scale(s), a float bias."""

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None, input_quant: Quantizer):
        super().__init__()
        self.out_features, self.in_features = codes.shape
        self.fused = fusable(input_quant, codes)
        self.int8 = FusedInt8Linear(codes, scale, input_quant) if self.fused else Int8Weight(codes)
        self.register_buffer("scale", scale)  # (out, 1) per row, or ()
        self.bias = bias
        self.input_quant = input_quant

    @property
    def codes(self) -> torch.Tensor:
        return self.int8.int8_codes()  # (out, in) int8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.int8(x) if self.fused else int_linear(x, self.input_quant, self.int8, self.scale)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class IntEmbedding(nn.Module):
    """A QuantEmbedding's integer form: int8 codes (V, C) and scale(s); the tied LM head as IntLinear does it."""

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, input_quant: Quantizer):
        super().__init__()
        self.num_embeddings, self.embedding_dim = codes.shape
        self.register_buffer("codes", codes.to(torch.int8))  # (V, C), for lookups
        self.register_buffer("scale", scale)                  # (V, 1) per token, or ()
        self.input_quant = input_quant
        self.fused = fusable(input_quant, self.codes)
        # the LM head: the same codes, in its kernel's layout
        self.head = FusedInt8Linear(self.codes, scale, input_quant) if self.fused else Int8Weight(self.codes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        scale = self.scale[ids] if self.scale.dim() else self.scale  # (B, T, 1) or ()
        return dequantize(self.codes[ids], scale)  # (B, T, C), bit for bit the fake table's rows

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """The LM head's scores (..., V), before final_logits_bias."""
        if self.fused:
            return self.head(hidden)
        return int_linear(hidden, self.input_quant, self.head, self.scale)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8 codes"


def integer_module(module: nn.Module, codes: torch.Tensor, scale: torch.Tensor) -> nn.Module | None:
    """The integer form of a quantized linear or embedding given its weight's codes, or None
    where there is none: asymmetric weight codes (no QuantConfig makes them) or an input that
    is not quantized to a symmetric grid (A=32)."""
    input_quant = module.input_quant
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
        model.tie_embedding(module)
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
