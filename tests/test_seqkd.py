"""Sequence-level KD: `minidq seqkd` writes the teacher's outputs, `distill --seqkd-data` trains on
them (here with learned quantizer scales), and the student it exports runs on the integer path."""

import json
from pathlib import Path

import pytest

from minidq import Bart, Tokenizer
from minidq.cli import build_parser, main, read
from minidq.data import DataError, Example, read_jsonl
from minidq.evaluate import predict
from minidq.export import load_packed
from minidq.deploy.intinfer import IntLinear
from minidq.seqkd import check_sources

ROOT = Path(__file__).resolve().parent.parent
TEACHER = ROOT / "data_samples" / "summarization" / "teacher"
DATA = ROOT / "data_samples" / "summarization"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """8 train and 4 valid examples of the summarization task."""
    root = tmp_path_factory.mktemp("seqkd")
    rows = [json.loads(line) for line in (DATA / "train.jsonl").read_text().splitlines()[:12]]
    for split, part in (("train", rows[:8]), ("valid", rows[8:])):
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return root


def test_seqkd_then_distill_on_it(tiny_data, tmp_path, capsys):
    out = tmp_path / "seqkd.jsonl"
    assert main(["seqkd", "--teacher", str(TEACHER), "--data", str(tiny_data), "--limit", "6", "--num-beams", "1",
                 "--max-length", "16", "--out", str(out)]) == 0, capsys.readouterr().err
    distilled, train = read_jsonl(out), read_jsonl(tiny_data / "train.jsonl")
    assert [ex.source for ex in distilled] == [ex.source for ex in train[:6]]
    teacher, tok = Bart.from_pretrained(TEACHER), Tokenizer.from_pretrained(TEACHER)
    assert [ex.target for ex in distilled] == predict(teacher, tok, [ex.source for ex in train[:6]], progress=False,
                                                      num_beams=1, max_length=16)
    check_sources(distilled, train[:6], out)

    run = tmp_path / "run"
    argv = ["distill", "--teacher", str(TEACHER), "--data", str(tiny_data), "--seqkd-data", str(out), "--out", str(run),
            "--layers", "1-1", "--max-steps", "2", "--batch-size", "3", "--warmup-steps", "0", "--eval-every", "2",
            "--eval-examples", "0", "--max-source-length", "64", "--max-target-length", "16",
            "--weight-method", "lsq", "--act-method", "elastic"]
    args = build_parser().parse_args(argv)
    assert read(args, "train") == distilled and read(args, "valid") == read_jsonl(tiny_data / "valid.jsonl")
    assert main(argv) == 0, capsys.readouterr().err
    student = load_packed(run / "student.packed")
    assert (student.quant_config.weight_method, student.quant_config.act_method) == ("lsq", "elastic")
    assert any(isinstance(m, IntLinear) for m in student.modules())
    Bart.from_pretrained(run / "best")  # the checkpoint holds the learned scales its quant_config asks for


def test_outputs_for_other_sources_are_refused(tmp_path):
    examples = [Example("a source", "a target"), Example("another source", "another target")]
    with pytest.raises(DataError, match="f.jsonl:2: its source is not training example 2's"):
        check_sources([examples[0], Example("shuffled", "x")], examples, "f.jsonl")
    with pytest.raises(DataError, match="1 teacher outputs for 2 training examples"):
        check_sources(examples[:1], examples, "f.jsonl")
