"""Solutions to the exercises of lesson 07 (quantizing BART: PTQ, then QAT)."""

import torch


def relative_weight_error(w: torch.Tensor, quantizer) -> float:
    """||q(w) - w|| / ||w||: how far a quantizer moves a weight matrix, as a share of its size."""
    return ((quantizer(w) - w).norm() / w.norm()).item()


def next_token_agreement(logits_a: torch.Tensor, logits_b: torch.Tensor, keep: torch.Tensor) -> float:
    """The share of real target positions (keep: (B, T) bool) where two models' most likely next
    tokens (argmax of logits (B, T, V)) are the same."""
    same = logits_a.argmax(-1) == logits_b.argmax(-1)   # (B, T)
    return same[keep].float().mean().item()
