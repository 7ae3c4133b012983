"""Lesson 09's checks reject plausible wrong answers and accept the solutions."""

import pytest

from checks.lesson_09 import check_hidden_loss_sum, check_student_parameters
from solutions import lesson_09 as solutions


def test_student_parameters():
    check_student_parameters(solutions.student_parameters)
    right = solutions.student_parameters
    wrong = [
        lambda c, e, d: right(c, e, d) - 4 * c.d_model,                  # positions without BART's offset of 2 rows
        lambda c, e, d: right(c, e, d) + c.vocab_size * c.d_model,       # the LM head counted as its own matrix
        lambda c, e, d: right(c, e, d) - 2 * c.d_model * d,              # decoder layers with two LayerNorms, not three
        lambda c, e, d: right(c, e, d) + c.vocab_size,                   # final_logits_bias counted (a buffer)
    ]
    for answer in wrong:
        with pytest.raises(AssertionError):
            check_student_parameters(answer)


def masked_mse(a, b, mask):
    m = mask[..., None].to(a.dtype).expand_as(a)
    return ((a - b) ** 2 * m).sum() / m.sum()


def test_hidden_loss_sum():
    check_hidden_loss_sum(solutions.hidden_loss_sum)
    wrong = [
        lambda s, t, lm, m: solutions.hidden_loss_sum(s, t, lm, m) / (len(lm) + 1),                 # averaged
        lambda s, t, lm, m: sum(masked_mse(s[i + 1], t[j + 1], m) for i, j in enumerate(lm)),       # no embedding pair
        lambda s, t, lm, m: sum(masked_mse(s[i], t[j], m) for i, j in enumerate([-1] + lm)),        # off by one
        lambda s, t, lm, m: sum(((s[i] - t[j]) ** 2).mean()                                          # no mask
                                for i, j in [(0, 0)] + [(k + 1, x + 1) for k, x in enumerate(lm)]),
    ]
    for answer in wrong:
        with pytest.raises(AssertionError):
            check_hidden_loss_sum(answer)
