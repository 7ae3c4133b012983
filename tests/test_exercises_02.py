"""Lesson 02's exercise checks accept the solutions and reject plausible wrong answers."""

import pytest
import torch

from checks.lesson_02 import check_cached_causal_bias, check_decoder_self_bias
from solutions import lesson_02 as solutions

FMIN = torch.finfo(torch.float32).min


def test_the_solutions_pass():
    check_cached_causal_bias(solutions.cached_causal_bias)
    check_decoder_self_bias(solutions.decoder_self_bias)


def causal_ignoring_the_cache(T, past_len=0):  # the new queries counted from 0, as if nothing were cached
    keep = torch.ones(T, past_len + T, dtype=torch.bool).tril()
    return (~keep).float() * FMIN


def causal_strict(T, past_len=0):  # off by one: a query may not see itself
    keys, queries = torch.arange(past_len + T), torch.arange(past_len, past_len + T)
    return (~(keys[None, :] < queries[:, None])).float() * FMIN


def causal_with_inf(T, past_len=0):
    keys, queries = torch.arange(past_len + T), torch.arange(past_len, past_len + T)
    return torch.zeros(T, past_len + T).masked_fill(keys[None, :] > queries[:, None], float("-inf"))


@pytest.mark.parametrize("wrong", [causal_ignoring_the_cache, causal_strict, causal_with_inf])
def test_check_cached_causal_bias_rejects(wrong):
    with pytest.raises(AssertionError):
        check_cached_causal_bias(wrong)


def biases_added(mask):  # two finfo.min biases summed: -inf where both drop a key
    T = mask.shape[1]
    causal = (~torch.ones(T, T, dtype=torch.bool).tril()).float() * FMIN
    padding = (1.0 - mask[:, None, None, :].float()) * FMIN
    return causal + padding


def causal_only(mask):
    T = mask.shape[1]
    return ((~torch.ones(T, T, dtype=torch.bool).tril()).float() * FMIN).expand(len(mask), 1, T, T)


def padding_on_queries(mask):  # the padding mask on the wrong axis
    T = mask.shape[1]
    keep = torch.ones(T, T, dtype=torch.bool).tril() & mask[:, None, :, None].bool()
    return (~keep).float() * FMIN


@pytest.mark.parametrize("wrong", [biases_added, causal_only, padding_on_queries])
def test_check_decoder_self_bias_rejects(wrong):
    with pytest.raises(AssertionError):
        check_decoder_self_bias(wrong)
