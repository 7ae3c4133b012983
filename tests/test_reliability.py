"""Nothing the user gave is overwritten, nothing is cut short in silence, and every bad input is
one line naming what to fix, before the work: the cases of the second reliability round.

Each test is one case a demanding user hit (data loss, a silent result, an unclear error), run
through the command line in-process as in test_cli.py.
"""

import json
import shutil

import pytest

from minidq.train import PREVIOUS
from test_cli import DATA, TEACHER, assert_one_line_error, run_cli, tiny_data, train_args  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def teacher_copy(tmp_path):
    """A copy of the shipped summarization teacher that a test may try to damage."""
    return shutil.copytree(TEACHER, tmp_path / "teacher")


def snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ---- no command writes over its own inputs

def test_export_into_the_models_own_folder_is_refused(capsys, teacher_copy):
    before = snapshot(teacher_copy)
    code, _, err = run_cli(capsys, "export", "--model", teacher_copy, "--quant", "2-2-8",
                           "--out", teacher_copy / "model.safetensors")
    assert_one_line_error(code, err, "--out", "is inside the model")
    assert snapshot(teacher_copy) == before


def test_seqkd_onto_a_data_split_is_refused(capsys, tiny_data):
    before = (tiny_data / "train.jsonl").read_bytes()
    code, _, err = run_cli(capsys, "seqkd", "--teacher", TEACHER, "--data", tiny_data, "--limit", 2,
                           "--out", tiny_data / "train.jsonl", "--num-beams", 1, "--max-length", 8)
    assert_one_line_error(code, err, "is the train split")
    assert (tiny_data / "train.jsonl").read_bytes() == before


@pytest.mark.parametrize("split", ["test", "valid"])
def test_predictions_onto_a_data_split_are_refused(capsys, tiny_data, split):
    before = (tiny_data / f"{split}.jsonl").read_bytes()
    code, _, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", tiny_data, "--limit", 2,
                           "--predictions", tiny_data / f"{split}.jsonl")
    assert_one_line_error(code, err, f"is the {split} split")
    assert (tiny_data / f"{split}.jsonl").read_bytes() == before


@pytest.mark.parametrize("command", ["export", "seqkd", "evaluate"])
def test_an_existing_output_file_needs_overwrite(capsys, tiny_data, tmp_path, command):
    out = tmp_path / "existing.txt"
    out.write_text("keep me\n")
    argv = {"export": ["export", "--model", TEACHER, "--quant", "2-2-8", "--out", out],
            "seqkd": ["seqkd", "--teacher", TEACHER, "--data", tiny_data, "--limit", 2, "--out", out,
                      "--num-beams", 1, "--max-length", 8],
            "evaluate": ["evaluate", "--model", TEACHER, "--data", tiny_data, "--limit", 2, "--predictions", out,
                         "--num-beams", 1, "--max-length", 8]}[command]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, "exists", "--overwrite")
    assert out.read_text() == "keep me\n"
    code, _, err = run_cli(capsys, *argv, "--overwrite")
    assert code == 0, err
    assert out.read_bytes() != b"keep me\n"


def test_train_out_may_not_hold_or_be_its_inputs(capsys, tiny_data, tmp_path):
    code, _, err = run_cli(capsys, *train_args(tiny_data, tiny_data, "--overwrite"))
    assert_one_line_error(code, err, "holds the train split")
    model = tmp_path / "model"
    assert run_cli(capsys, *train_args(tiny_data, tmp_path / "first"))[0] == 0
    shutil.copytree(tmp_path / "first" / "best", model)
    code, _, err = run_cli(capsys, "train", "--data", tiny_data, "--model", model, "--out", model, "--overwrite",
                           "--max-steps", 1)
    assert_one_line_error(code, err, "is the model")


def test_overwrite_keeps_the_old_run_until_the_new_one_has_saved(capsys, tiny_data, tmp_path):
    out = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_data, out))[0] == 0
    before = snapshot(out / "best")
    # a replacement that diverges at once saves nothing: the old run is given back whole
    code, _, err = run_cli(capsys, *train_args(tiny_data, out, "--overwrite", "--lr", 1e6))
    assert code == 2 and "diverged" in err
    assert snapshot(out / "best") == before and (out / "last.ckpt").is_file() and not (out / PREVIOUS).exists()
    # one that saves replaces it, and leaves nothing aside
    assert run_cli(capsys, *train_args(tiny_data, out, "--overwrite", "--seed", 1))[0] == 0
    assert snapshot(out / "best") != before and not (out / PREVIOUS).exists()
    assert json.loads((out / "train_config.json").read_text())["seed"] == 1
