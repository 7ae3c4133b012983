"""The tasks' scorers: per-example key metrics, and the per-index scorer the bootstrap draws from."""

import pytest

from minidq.data import load_split
from minidq.tasks import SAMPLES, TASKS, Scorer


def scorer(task: str, n: int = 6) -> Scorer:
    examples = load_split(SAMPLES / task, "valid")[:n]
    return Scorer.for_examples(TASKS[task], examples, SAMPLES / task, "valid")


def test_per_example_is_facts_right_per_example_and_per_index_is_its_mean():
    s = scorer("summarization")
    preds = s.refs[:3] + ["nothing at all"] * 3  # references state every fact; the filler none
    assert s.per_example(preds) == [100.0] * 3 + [0.0] * 3
    assert s.per_index(preds)([0, 1, 3, 4]) == 50.0


def test_bleu_has_no_per_example_value():
    s = scorer("translation")
    with pytest.raises(ValueError, match="corpus"):
        s.per_example(s.refs)
    assert s.per_index(s.refs)(range(len(s.refs))) == pytest.approx(100.0)
