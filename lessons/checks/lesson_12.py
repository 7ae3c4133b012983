"""Checks for the exercises of lesson 12 (integer inference). Each builds its own layer and inputs."""

from __future__ import annotations

import torch

from minidq.fakequant import Quantizer
from minidq.quant import QuantLinear

K, N = 96, 40  # small: every worst-case sum of 8-bit codes (96 * 127 * 127) is below 2^24, so float32 holds it exactly


def _layer(weight_quant: Quantizer, input_per_row: bool, seed: int = 11) -> QuantLinear:
    g = torch.Generator().manual_seed(seed)
    layer = QuantLinear(K, N, weight_quant=weight_quant,
                        input_quant=Quantizer("symmetric", 8, per_row=input_per_row, clip=2.5))
    with torch.no_grad():
        layer.weight.copy_(0.05 * torch.randn(N, K, generator=g))
        layer.bias.copy_(0.1 * torch.randn(N, generator=g))
    return layer


def _inputs(seed: int = 12) -> list[torch.Tensor]:
    """Tokens of different sizes: one batch inside the +-2.5 clamp, one beyond it."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.tensor([[0.1], [0.5], [1.0], [0.3], [0.8]])
    small = torch.randn(5, K, generator=g).clamp(-3, 3) * sizes * 0.8   # max |x| < 2.5
    large = torch.randn(6, K, generator=g) * torch.tensor([[0.2], [3.0], [1.0], [4.0], [0.5], [2.0]])
    return [small, large]


def _bit_for_bit(y: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    diff = (y - expected).abs().max().item()
    assert diff < 1e-5, f"not equal to {what}: max |diff| {diff:.3g}"
    assert torch.equal(y, expected), (
        f"within float rounding of {what} ({diff:.3g}) but not bit for bit: float products are not "
        "associative; multiply the int32 sums by the product of the scales, acc * (sx * sw), as section 1 does")


def _equals_layer(int8_linear, layer, what: str) -> None:
    """int8_linear(x, weight codes, weight scale, bias) equals the fake-quantized `layer` bit for bit."""
    w_codes, w_scale = layer.weight_quant.codes(layer.weight)
    for x in _inputs():
        with torch.no_grad():
            y = int8_linear(x, w_codes, w_scale, layer.bias.detach())
            expected = layer(x)
        assert y.shape == expected.shape, f"shape {tuple(y.shape)}, expected {tuple(expected.shape)}"
        _bit_for_bit(y, expected, what)


def check_int8_linear_per_tensor(int8_linear_per_tensor) -> None:
    layer = _layer(Quantizer("ternary", 2, clip=2.5), input_per_row=False)
    _equals_layer(int8_linear_per_tensor, layer, "QuantLinear(per_row=False)")


def check_int8_linear_per_row_weight(int8_linear_per_row_weight) -> None:
    layer = _layer(Quantizer("symmetric", 8, per_row=True, clip=2.5), input_per_row=True)
    assert layer.weight_quant.codes(layer.weight)[1].shape == (N, 1)  # one scale per output row
    _equals_layer(int8_linear_per_row_weight, layer, "the per-row QuantLinear")


def asymmetric_reference(x: torch.Tensor, w_codes: torch.Tensor, w_scale: torch.Tensor,
                         bias: torch.Tensor) -> torch.Tensor:
    """The uint8 grid dequantized and multiplied in float64: what the integer version must equal."""
    lo = x.amin(dim=-1, keepdim=True).clamp(max=0)
    hi = x.amax(dim=-1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / 255
    zero = torch.round(-lo / scale)
    u = (torch.round(x / scale) + zero).clamp(0, 255)
    return ((u - zero).double() @ w_codes.double().T) * scale.double() * w_scale.double() + bias.double()


def check_int8_linear_asymmetric(int8_linear_asymmetric) -> None:
    g = torch.Generator().manual_seed(13)
    # GELU outputs: one-sided (nothing below -0.17), each token its own size
    x = torch.nn.functional.gelu(torch.randn(7, K, generator=g) * torch.tensor([[0.5], [1], [2], [3], [1.5], [4], [0.8]]))
    weight = 0.05 * torch.randn(N, K, generator=g)
    w_codes, w_scale = Quantizer("ternary", 2).codes(weight)
    bias = 0.1 * torch.randn(N, generator=g)
    y = int8_linear_asymmetric(x, w_codes, w_scale, bias)
    expected = asymmetric_reference(x, w_codes, w_scale, bias)
    assert y.shape == expected.shape, f"shape {tuple(y.shape)}, expected {tuple(expected.shape)}"
    diff = (y.double() - expected).abs().max().item()
    assert diff < 1e-4, f"max |diff| {diff:.3g} from the uint8 grid with a zero point, dequantized"
