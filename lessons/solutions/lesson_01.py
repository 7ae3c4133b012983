"""Lesson 01 exercises: solutions. While a notebook's exercise is still its stub, `attempt` checks
the answer of the same name here instead, so the notebook runs top to bottom."""

from __future__ import annotations

import torch


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: every byte drawn as a visible character (the space as 'Ġ')."""
    visible = [b for b in range(256) if chr(b).isprintable() and not chr(b).isspace()]
    others = [b for b in range(256) if b not in visible]
    table = {b: chr(b) for b in visible}
    table.update({b: chr(256 + n) for n, b in enumerate(others)})
    return table


def decode_ids(ids: list[int], id_to_token: dict[int, str], special_ids: set[int]) -> str:
    """Token ids back to text: drop the special tokens, join the byte-characters, map each back
    to its byte, decode the bytes as UTF-8."""
    char_to_byte = {c: b for b, c in bytes_to_unicode().items()}
    chars = "".join(id_to_token[i] for i in ids if i not in special_ids)
    return bytes(char_to_byte[c] for c in chars).decode("utf-8", errors="replace")


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists to the longest: (input_ids, attention_mask), both (batch, longest),
    the mask 1 on real tokens and 0 on padding."""
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, s in enumerate(sequences):
        input_ids[row, : len(s)] = torch.tensor(s, dtype=torch.long)
        attention_mask[row, : len(s)] = 1
    return input_ids, attention_mask
