"""Checks of lesson 10's exercises: each builds its own inputs and asserts."""

import random

import torch

from minidq import Bart, BartConfig
from minidq.distill import DistillConfig, DistillLoss, make_student
from minidq.stats import mean_of, paired_bootstrap


def check_paired_interval(paired_interval) -> None:
    a = [100.0 * (i % 3 == 0) for i in range(60)]
    assert paired_interval(a, a) == (0.0, 0.0, 0.0), "a model against itself: no difference, no spread"
    diff, low, high = paired_interval(a, [x - 3.0 for x in a])
    assert abs(diff - 3) < 1e-9 and abs(low - 3) < 1e-9 and abs(high - 3) < 1e-9, \
        "b is a shifted by 3 on every example: paired, every resample gives exactly 3 (unpaired draws would not)"
    rng = random.Random(1)   # 200 examples, two correlated models (mostly right on the same ones)
    easy = [rng.random() < 0.7 for _ in range(200)]
    a = [100.0 * (e if rng.random() < 0.9 else not e) for e in easy]
    b = [100.0 * (e if rng.random() < 0.8 else not e) for e in easy]
    diff, low, high = paired_interval(a, b, resamples=2000, seed=3)
    ref = paired_bootstrap(mean_of(a), mean_of(b), 200, resamples=2000, seed=3)
    assert abs(diff - ref.diff) < 1e-9, "the difference is mean(a) - mean(b) over all the examples"
    assert low <= diff <= high
    width, ref_width = high - low, ref.high - ref.low
    assert abs(width / ref_width - 1) < 0.08, \
        f"interval width {width:.2f} vs {ref_width:.2f}: a 95% paired interval (2.5th to 97.5th percentile)"
    assert abs((low + high) / 2 - (ref.low + ref.high) / 2) < 0.6


def _tiny_pair():
    torch.manual_seed(0)
    config = BartConfig(vocab_size=60, d_model=16, encoder_layers=2, decoder_layers=3, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32)
    teacher = Bart(config).eval()
    student = make_student(teacher, 2, 1).eval()
    ids = torch.randint(3, 60, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    labels = torch.randint(3, 60, (3, 7))
    labels[1, 5:] = -100
    return teacher, student, {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _grad_norm(student, teacher, batch, cfg) -> float:
    student.zero_grad()
    loss, _ = DistillLoss(teacher, cfg)(student, batch)
    loss.backward()
    return torch.sqrt(sum((p.grad ** 2).sum() for p in student.parameters() if p.grad is not None)).item()


def check_balanced_config(balanced_config) -> None:
    cfg = balanced_config({"ce": 7.0, "logits": 6.0, "hidden": 0.6, "attention": 0.0015})
    assert isinstance(cfg, DistillConfig)
    assert cfg.ce == 1 and cfg.logits == 1, "the task loss and the logits term keep weight 1"
    assert abs(cfg.hidden - 10) < 1e-9 and abs(cfg.attention - 4000) < 1e-6, \
        "weight = logits' gradient norm / the term's own: a term 10x weaker gets weight 10"
    assert cfg.reduction == "mean"
    teacher, student, batch = _tiny_pair()   # on a real (tiny) student: the weighted pulls are equal
    only = {"ce": dict(ce=1, logits=0, hidden=0, attention=0), "logits": dict(ce=0, logits=1, hidden=0, attention=0),
            "hidden": dict(ce=0, logits=0, hidden=1, attention=0), "attention": dict(ce=0, logits=0, hidden=0, attention=1)}
    norms = {k: _grad_norm(student, teacher, batch, DistillConfig(**w)) for k, w in only.items()}
    cfg = balanced_config(norms)
    for term in ("hidden", "attention"):
        weighted = DistillConfig(**{**only[term], term: getattr(cfg, term)})
        pull = _grad_norm(student, teacher, batch, weighted)
        assert abs(pull / norms["logits"] - 1) < 1e-3, f"{term}: weighted pull {pull:.4g}, logits' {norms['logits']:.4g}"
