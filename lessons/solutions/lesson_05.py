"""Lesson 05 exercises: solutions. While a notebook's exercise is still its stub, `attempt` checks
the answer of the same name here instead, so the notebook runs top to bottom."""

from __future__ import annotations

import numpy as np


def token_deletion(tokens: list[int], rng: np.random.Generator, ratio: float = 0.15) -> list[int]:
    """BART's token deletion: round(ratio * len) tokens, chosen at random, are removed (no mask
    token marks where), so the model must find *which* positions are missing."""
    n_delete = round(ratio * len(tokens))
    deleted = set(rng.choice(len(tokens), n_delete, replace=False).tolist())
    return [t for i, t in enumerate(tokens) if i not in deleted]


def document_rotation(tokens: list[int], rng: np.random.Generator) -> list[int]:
    """BART's document rotation: a token is chosen uniformly at random and the document is
    rotated to begin with it, so the model must find the true start."""
    start = int(rng.integers(len(tokens)))
    return tokens[start:] + tokens[:start]
