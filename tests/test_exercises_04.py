"""Lesson 04's exercise checks accept the solutions and reject plausible wrong answers."""

import pytest
import torch

from checks.lesson_04 import check_banned_next_tokens, check_greedy_min_length
from solutions import lesson_04 as solutions


def test_the_solutions_pass():
    check_banned_next_tokens(solutions.banned_next_tokens)
    check_greedy_min_length(solutions.greedy_min_length)


def banned_last_occurrence_only(sequence, n):
    prefix = sequence[len(sequence) - n + 1:] if n > 1 else []
    for i in range(len(sequence) - n, -1, -1):
        if sequence[i: i + n - 1] == prefix:
            return {sequence[i + n - 1]}
    return set()


def banned_prefix_too_long(sequence, n):  # off by one: matches n tokens instead of n - 1
    return solutions.banned_next_tokens(sequence, n + 1)


def banned_including_the_current_ngram(sequence, n):  # lets the prefix match itself at the very end
    prefix = sequence[len(sequence) - n + 1:] if n > 1 else []
    return {sequence[i + n - 1] if i + n - 1 < len(sequence) else -1
            for i in range(len(sequence) - n + 2) if sequence[i: i + n - 1] == prefix} - {-1} | {sequence[-1]}


@pytest.mark.parametrize("wrong", [banned_last_occurrence_only, banned_prefix_too_long,
                                   banned_including_the_current_ngram])
def test_check_banned_next_tokens_rejects(wrong):
    with pytest.raises(AssertionError):
        check_banned_next_tokens(wrong)


@torch.no_grad()
def greedy_variant(model, input_ids, attention_mask, max_length, min_length, pad_id, eos_id,
                   block_while=lambda length, min_length: length < min_length, force_eos=True):
    encoder_outputs = model.encoder(input_ids, attention_mask)
    out = torch.full((len(input_ids), 1), model.config.decoder_start_token_id)
    done = torch.zeros(len(input_ids), dtype=torch.bool)
    while out.shape[1] < max_length and not done.all():
        logits = model(decoder_input_ids=out, encoder_outputs=encoder_outputs,
                       attention_mask=attention_mask).logits[:, -1]
        if block_while(out.shape[1], min_length):
            logits[:, eos_id] = float("-inf")
        if force_eos and out.shape[1] == max_length - 1:
            logits = torch.full_like(logits, float("-inf"))
            logits[:, eos_id] = 0.0
        next_token = logits.argmax(-1).masked_fill(done, pad_id)
        out = torch.cat([out, next_token[:, None]], dim=1)
        done |= next_token == eos_id
    return out


def greedy_min_length_off_by_one(*args):  # blocks </s> one step too long
    return greedy_variant(*args, block_while=lambda length, min_length: length <= min_length)


def greedy_min_length_counting_generated_only(*args):  # forgets that min_length counts the start token
    return greedy_variant(*args, block_while=lambda length, min_length: length - 1 < min_length)


def greedy_min_length_without_forced_eos(*args):
    return greedy_variant(*args, force_eos=False)


@pytest.mark.parametrize("wrong", [greedy_min_length_off_by_one, greedy_min_length_counting_generated_only,
                                   greedy_min_length_without_forced_eos])
def test_check_greedy_min_length_rejects(wrong):
    with pytest.raises(AssertionError):
        check_greedy_min_length(wrong)
