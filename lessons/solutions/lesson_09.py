"""Solutions to the exercises of lesson 09 (DQ-BART: distillation and quantization, jointly)."""

import torch


def weighted_total(terms: dict, cfg) -> torch.Tensor:
    """The training objective from its named terms: sum of weight * term, with the weights of a
    DistillConfig (ce, logits, hidden, attention). A term that is absent (weight 0) adds nothing."""
    weights = {"ce": cfg.ce, "logits": cfg.logits, "hidden": cfg.hidden, "attention": cfg.attention}
    return sum(weights[name] * value for name, value in terms.items())


def flipped_share(w_before: torch.Tensor, w_after: torch.Tensor, quantizer) -> float:
    """The share of a weight's integer codes that changed when its latent values moved from
    w_before to w_after (the codes under `quantizer`, e.g. a ternary Quantizer): the only change
    a quantized forward pass can see."""
    before, after = quantizer.codes(w_before)[0], quantizer.codes(w_after)[0]
    return (before != after).float().mean().item()
