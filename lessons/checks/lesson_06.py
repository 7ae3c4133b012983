"""Checks for the exercises of lesson 06 (fine-tuning the teacher). Each builds its own inputs
and is made of asserts."""

from __future__ import annotations

import math
import random
from pathlib import Path

import torch

from minidq.metrics import rouge_n, rouge_tokenize
from minidq.train import TrainConfig, lr_at

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "data_samples" / "summarization"


def check_rouge_n_f1(rouge_n_f1) -> None:
    """rouge_n_f1(pred, ref, n): clipped n-gram F1 of two token lists, equal to minidq's rouge_n."""
    assert rouge_n_f1("the the the".split(), "the cat".split(), 1) == 2 * (1 / 3 * 1 / 2) / (1 / 3 + 1 / 2)
    assert rouge_n_f1("a b".split(), "c d".split(), 2) == 0.0
    assert rouge_n_f1([], "a b".split(), 1) == 0.0 and rouge_n_f1("a".split(), "a b".split(), 2) == 0.0
    rng = random.Random(0)
    words = "the cat sat on a mat said on June 9 the company".split()
    for _ in range(200):
        pred = [rng.choice(words) for _ in range(rng.randint(0, 12))]
        ref = [rng.choice(words) for _ in range(rng.randint(1, 12))]
        for n in (1, 2, 3):
            assert abs(rouge_n_f1(pred, ref, n) - rouge_n(pred, ref, n).f1) < 1e-12, (pred, ref, n)
    a, b = rouge_tokenize("Foloshe Pharma will build 634 wind turbines."), rouge_tokenize("Foloshe Pharma builds 634 turbines")
    assert abs(rouge_n_f1(a, b, 1) - rouge_n(a, b, 1).f1) < 1e-12


def check_learning_rate(learning_rate) -> None:
    """learning_rate(step, lr, warmup_steps, total_steps): the warm-up and linear decay of lr_at."""
    for lr, warmup, total in [(1e-3, 200, 5000), (6e-3, 10, 300), (5e-4, 0, 100), (1e-3, 50, 50), (3e-3, 30, 600)]:
        schedule = TrainConfig(lr=lr, warmup_steps=warmup)
        for step in range(total + 1):
            assert math.isclose(learning_rate(step, lr, warmup, total), lr_at(step, schedule, total), rel_tol=1e-12), \
                (lr, warmup, total, step)
    assert learning_rate(0, 1.0, 10, 100) == 0.1 and learning_rate(9, 1.0, 10, 100) == 1.0
    assert learning_rate(100, 1.0, 10, 100) == 0.0


def check_input_gap(input_gap) -> None:
    """input_gap(model, batch): loss with the sources rolled across the batch minus the paired loss,
    equal to the input_gap that minidq.train logs, on the shipped teacher and on a random model."""
    from minidq import Bart, BartConfig, Tokenizer
    from minidq.data import Batches, encode, load_split
    from minidq.train import evaluate_during_training

    tok = Tokenizer.from_pretrained(DATA)
    pairs = encode(load_split(DATA, "valid")[:12], tok, 256, 64).pairs
    batches = Batches(pairs, len(pairs), tok.pad_token_id, shuffle=False)   # one batch of 12
    batch = next(iter(batches.epoch(0)))
    torch.manual_seed(0)
    random_model = Bart(BartConfig(vocab_size=tok.vocab_size, d_model=32, encoder_layers=1, decoder_layers=1,
                                   encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                                   decoder_ffn_dim=64, max_position_embeddings=256))
    teacher = Bart.from_pretrained(DATA / "teacher")
    for name, model in (("teacher", teacher), ("random model", random_model)):
        want = evaluate_during_training(model, tok, batches, [], TrainConfig(eval_examples=0))["input_gap"]
        got = input_gap(model, {k: v.clone() for k, v in batch.items()})
        assert isinstance(got, float), "return a float (.item())"
        assert abs(got - want) < 1e-4, f"{name}: {got:.5f}, minidq's input_gap {want:.5f}"
    assert input_gap(teacher, batch) > 1.0   # the teacher reads its source
