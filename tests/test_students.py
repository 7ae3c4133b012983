"""Students trained to a budget (minidq.students): a run is a validation curve, it resumes and
finishes once, and a finished run ships as a packed student with its record."""

import json

import pytest
import torch

from minidq.export import load_packed
from minidq.model import Bart
from minidq.students import StudentRun, calibrate, ship, shipped, train_student
from minidq.tasks import SAMPLES

pytestmark = pytest.mark.usefixtures("one_thread")
DATA = SAMPLES / "summarization"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    for split, n in (("train", 16), ("valid", 4), ("test", 4)):
        lines = (DATA / f"{split}.jsonl").read_text().splitlines()[:n]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


RUN = StudentRun("summarization", "DQ", "2-2-8", "1-1", dict(clip_val=None, weight_per_row=True), lr=1e-4,
                 steps=4, eval_every=2, batch_size=4, valid_examples=4)


@pytest.fixture(scope="module")
def finished(small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    figures = train_student(RUN, out, data_dir=small_data)
    return out, figures


def test_a_run_is_a_validation_curve_and_finishes_once(finished, small_data):
    out, figures = finished
    evals = [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "val_loss" in r]
    assert [e["step"] for e in evals] == [2, 4]
    assert all("facts_exact" in e and "rougeL" in e for e in evals)  # the key metric at every evaluation
    assert sorted(p.name for p in out.glob("preds_*.json")) == ["preds_000002.json", "preds_000004.json"]
    assert json.loads((out / "done.json").read_text()) == figures
    log = (out / "log.jsonl").read_text()
    assert train_student(RUN, out, data_dir=small_data) == figures  # finished: nothing trains again
    assert (out / "log.jsonl").read_text() == log


def test_a_run_stopped_before_its_first_checkpoint_starts_again(finished, small_data, tmp_path):
    out, figures = finished
    stopped = tmp_path / "stopped"
    stopped.mkdir()
    for name in ("log.jsonl", "train_config.json"):  # what a run killed before step 2 leaves
        (stopped / name).write_text((out / name).read_text().splitlines()[0] + "\n")
    assert train_student(RUN, stopped, data_dir=small_data) == figures
    evals = [r["step"] for r in map(json.loads, (stopped / "log.jsonl").read_text().splitlines()) if "val_loss" in r]
    assert evals == [2, 4]  # one curve, the new run's


def test_a_shipped_student_is_its_best_checkpoint_packed_with_its_record(finished, tmp_path):
    out, _ = finished
    packed = ship(RUN, out, tmp_path, command="python benchmarks/recipe_study.py run ...")
    record = json.loads((tmp_path / "DQ-2-2-8-1-1.json").read_text())
    evals = record["validation"]
    assert record["kept_step"] == min(evals, key=lambda e: e["val_loss"])["step"]
    assert record["run"]["quant_options"] == {"clip_val": None, "weight_per_row": True}
    assert (tmp_path / "DQ-2-2-8-1-1.log.jsonl").read_text() == (out / "log.jsonl").read_text()
    assert shipped(tmp_path) == {"DQ-2-2-8-1-1": (packed, record)}
    best, loaded = Bart.from_pretrained(out / "best"), load_packed(packed, backend="fake")
    quantized = {name: m for name, m in best.named_modules() if hasattr(m, "quantized_weight")}
    assert len(quantized) > 10
    with torch.no_grad():
        for name, module in quantized.items():  # the kept checkpoint's very weights (scales stored in fp16)
            torch.testing.assert_close(loaded.get_submodule(name).weight, module.quantized_weight(),
                                       rtol=1e-3, atol=1e-6)


def test_a_student_of_the_papers_recipe_ships_beside_minidqs_and_one_of_its_own_keeps_its_name():
    from dataclasses import replace

    assert (RUN.recipe, RUN.row) == ("minidq", "DQ-2-2-8-1-1")
    paper = replace(RUN, quant_options={}, lr=5e-4)
    assert (paper.recipe, paper.row) == ("paper", "DQ-2-2-8-1-1-paper")  # not the same files as minidq's
    for own in (replace(RUN, lr=3e-4), replace(RUN, distill_options={"logits_kind": "kl"}),
                replace(paper, calibrate=99.99)):
        assert (own.recipe, own.row) == (None, "DQ-2-2-8-1-1")


def test_ship_refuses_an_unfinished_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        ship(RUN, tmp_path, tmp_path / "students", command="")


def test_calibrate_sets_every_activation_clamp_at_its_percentile(small_data):
    from minidq.data import load_split, make_batches
    from minidq.distill import make_student
    from minidq.quant import QuantConfig, quantize
    from minidq.students import activation_quantizers
    from minidq.tokenizer import Tokenizer

    teacher = Bart.from_pretrained(DATA / "teacher")
    tok = Tokenizer.from_pretrained(DATA / "teacher")
    batches = make_batches(load_split(small_data, "train"), tok, 256, 64, 8, tok.pad_token_id, shuffle=False, where="train")
    clips = {}
    for pct in (90.0, 99.99):
        student = quantize(make_student(teacher, 1, 1), QuantConfig.parse("2-2-8", clip_val=None))
        clips[pct] = calibrate(student, batches, pct, n_batches=2)
        sites = activation_quantizers(student)
        assert set(clips[pct]) == set(sites) and all(sites[n].clip == c for n, c in clips[pct].items())
    assert all(clips[90.0][n] < clips[99.99][n] for n in clips[90.0])
