"""Lesson 04 exercises: solutions. While a notebook's exercise is still its stub, `attempt` checks
the answer of the same name here instead, so the notebook runs top to bottom."""

from __future__ import annotations

import torch


def banned_next_tokens(sequence: list[int], n: int) -> set[int]:
    """no_repeat_ngram_size=n: the tokens that would complete an n-gram already in `sequence`.
    The n-gram being completed is the last n-1 tokens plus the next one; wherever those n-1
    tokens occurred before, the token that followed them is banned."""
    if n < 1 or len(sequence) < n - 1:
        return set()
    prefix = sequence[len(sequence) - n + 1:] if n > 1 else []
    banned = set()
    for i in range(len(sequence) - n + 1):
        if sequence[i : i + n - 1] == prefix:
            banned.add(sequence[i + n - 1])
    return banned


@torch.no_grad()
def greedy_min_length(model, input_ids, attention_mask, max_length: int, min_length: int,
                      pad_id: int, eos_id: int) -> torch.Tensor:
    """Greedy decoding with HF's min_length and BART's forced EOS: while the sequence (start
    token included) is shorter than min_length, EOS gets -inf; at the last step (length
    max_length - 1) EOS is the only choice. Finished rows get pad_id."""
    encoder_outputs = model.encoder(input_ids, attention_mask)
    out = torch.full((len(input_ids), 1), model.config.decoder_start_token_id)
    done = torch.zeros(len(input_ids), dtype=torch.bool)
    while out.shape[1] < max_length and not done.all():
        logits = model(decoder_input_ids=out, encoder_outputs=encoder_outputs,
                       attention_mask=attention_mask).logits[:, -1]                 # (B, V)
        if out.shape[1] < min_length:
            logits[:, eos_id] = float("-inf")
        if out.shape[1] == max_length - 1:
            forced = torch.full_like(logits, float("-inf"))
            forced[:, eos_id] = 0.0
            logits = forced
        next_token = logits.argmax(-1).masked_fill(done, pad_id)
        out = torch.cat([out, next_token[:, None]], dim=1)
        done |= next_token == eos_id
    return out
