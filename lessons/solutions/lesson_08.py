"""Solutions to the exercises of lesson 08 (quantizing BART: PTQ, then QAT)."""

import copy

import torch

from minidq.fakequant import ternary_codes


def percentile_clip_quant(x: torch.Tensor, bits: int, quantile: float) -> torch.Tensor:
    """Symmetric fake quantization whose clamp comes from the data: clip = the `quantile` of |x|
    (over the whole tensor), then the max-abs grid of the clamped values, as minidq's Quantizer
    with clip=that value. quantile=1.0 clamps nothing."""
    clip = torch.quantile(x.detach().abs().flatten().float(), quantile)
    qmax = 2 ** (bits - 1) - 1
    x = x.clamp(-clip, clip)
    scale = x.abs().max() / qmax
    return torch.round(x / scale).clamp(-qmax, qmax) * scale


def ternary_except(model: torch.nn.Module, keep: list[str]) -> torch.nn.Module:
    """A copy of the model whose nn.Linear weights are all ternary (TWN, clip 2.5: codes * alpha),
    except those of modules whose name starts with one of the prefixes in `keep` (mixed precision:
    the sensitive layers stay in full precision). The model passed in is left unchanged."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and not any(name.startswith(p) for p in keep):
                codes, alpha = ternary_codes(module.weight, clip=2.5)
                module.weight.copy_(codes * alpha)
    return model
