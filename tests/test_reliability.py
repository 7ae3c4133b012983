"""Nothing the user gave is overwritten, nothing is cut short in silence, and every bad input is
one line naming what to fix, before the work: the cases of the second reliability round.

Each test is one case a demanding user hit (data loss, a silent result, an unclear error), run
through the command line in-process as in test_cli.py.
"""

import json
import shutil

import pytest

from minidq.runs import PREVIOUS
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


# ---- generation settings are explicit and saved; nothing is cut short in silence

def test_a_model_trained_from_config_saves_its_decoding_settings(capsys, tiny_data, tmp_path):
    """It used to have no generation_config.json: evaluate then decoded greedily, 20 new tokens."""
    assert run_cli(capsys, *train_args(tiny_data, tmp_path / "run", "--max-target-length", 40))[0] == 0
    saved = json.loads((tmp_path / "run" / "best" / "generation_config.json").read_text())
    assert saved["max_length"] == 41 and saved["num_beams"] == 4
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["eval_max_length"] == 41
    code, _, err = run_cli(capsys, "evaluate", "--model", tmp_path / "run" / "best", "--data", tiny_data, "--limit", 2)
    assert code == 0, err
    assert "decoding: 4 beams, max_length 41," in err


def test_outputs_cut_at_max_length_are_counted(capsys):
    code, out, err = run_cli(capsys, "generate", "--model", TEACHER, "--max-length", 5, "--num-beams", 1,
                             (DATA / "test.jsonl").read_text().splitlines()[0])
    assert code == 0, err
    assert "minidq: warning: 1 of 1 outputs reached max_length 5 and may be cut short (raise --max-length)" in err


def test_sources_beyond_the_position_table_are_cut_with_a_count(capsys, tmp_path):
    """The translation teacher has 64 positions: a longer source used to fail (evaluate) or be
    refused (generate, which had no --max-source-length)."""
    teacher = TEACHER.parent.parent / "translation" / "teacher"
    long_text = " ".join(["the weather in the north is good today"] * 20)
    code, out, err = run_cli(capsys, "generate", "--model", teacher, "--num-beams", 1, long_text, "short text")
    assert code == 0, err
    assert "sources cut at 64 tokens" in err and "1 of 2 sources were longer than 64 tokens" in err
    assert len(out.splitlines()) == 2


@pytest.mark.parametrize("texts", [[""], ["a text", "  "]])
def test_generate_refuses_an_empty_text(capsys, texts):
    code, _, err = run_cli(capsys, "generate", "--model", TEACHER, *texts)
    assert_one_line_error(code, err, "is empty")


def test_length_penalty_nan_is_refused(capsys):
    code, _, err = run_cli(capsys, "generate", "--model", TEACHER, "--length-penalty", "nan", "a text")
    assert_one_line_error(code, err, "--length-penalty", "not a finite number")
    from minidq import Bart
    import torch
    with pytest.raises(ValueError, match="length_penalty must be a finite number"):
        Bart.from_pretrained(TEACHER).generate(torch.tensor([[0, 5, 2]]), length_penalty=float("nan"))


# ---- fail before work, and say what to fix

@pytest.mark.parametrize("flags, named", [
    (["--w-logits", "-5"], "--w-logits"), (["--temperature", "-1"], "--temperature"),
    (["--temperature", "0"], "--temperature"), (["--w-ce", "nan"], "--w-ce"), (["--lr", "inf"], "--lr"),
    (["--w-ce", "0", "--w-logits", "0", "--w-hidden", "0", "--w-attention", "0"], "every loss weight is 0"),
])
def test_distill_refuses_bad_weights_before_work(capsys, tiny_data, tmp_path, flags, named):
    code, _, err = run_cli(capsys, "distill", "--teacher", TEACHER, "--data", tiny_data, "--out", tmp_path / "r",
                           "--max-steps", 1, *flags)
    assert code == 2 and named in err and "Traceback" not in err, err
    assert not (tmp_path / "r" / "log.jsonl").exists()


def test_distill_config_refuses_what_the_flags_refuse():
    from minidq.config import ConfigError
    from minidq.distill import DistillConfig

    for bad in (dict(logits=-1.0), dict(ce=float("nan")), dict(temperature=0.0), dict(logits_kind="l1"),
                dict(ce=0.0, logits=0.0, hidden=0.0, attention=0.0)):
        with pytest.raises(ConfigError):
            DistillConfig(**bad)


def test_a_second_run_into_the_same_folder_is_refused(capsys, tiny_data, tmp_path):
    """Two runs into one --out used to both exit 0, with every step logged twice."""
    import subprocess
    import sys
    from minidq.runs import LOCK

    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK).write_text(f"{sleeper.pid}\n")  # as a live run's lock
        code, _, err = run_cli(capsys, *train_args(tiny_data, out, "--overwrite"))
        assert_one_line_error(code, err, f"another run (process {sleeper.pid}) is training into it")
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone: its lock is stale, and the folder (holding only the lock) is free
    assert run_cli(capsys, *train_args(tiny_data, out))[0] == 0
    assert not (out / LOCK).exists()


def test_resume_after_the_data_changed_is_refused(capsys, tiny_data, tmp_path):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    assert run_cli(capsys, *train_args(data, tmp_path / "run"))[0] == 0
    lines = (data / "train.jsonl").read_text().splitlines()
    (data / "train.jsonl").write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # same lines, another order
    code, _, err = run_cli(capsys, *train_args(data, tmp_path / "run", "--resume", "--max-steps", 4))
    assert_one_line_error(code, err, "run.data_files", "--resume-anyway")


# ---- honest files: packed inputs work or are refused; same model, same bytes; the user's umask

@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    path = tmp_path_factory.mktemp("packed") / "student.packed"
    assert main_cli("export", "--model", TEACHER, "--quant", "2-2-8", "--out", path) == 0
    return path


def main_cli(*argv) -> int:
    from minidq.cli import main
    return main([str(a) for a in argv])


def test_exports_are_byte_reproducible_and_a_packed_file_packs_again_the_same(capsys, packed, tmp_path):
    assert run_cli(capsys, "export", "--model", TEACHER, "--quant", "2-2-8", "--out", tmp_path / "again.packed")[0] == 0
    assert (tmp_path / "again.packed").read_bytes() == packed.read_bytes()
    assert run_cli(capsys, "export", "--model", packed, "--out", tmp_path / "repacked.packed")[0] == 0
    assert (tmp_path / "repacked.packed").read_bytes() == packed.read_bytes()


def test_files_are_written_with_the_users_umask(capsys, tiny_data, tmp_path):
    import os
    old = os.umask(0o022)
    try:
        assert run_cli(capsys, "export", "--model", TEACHER, "--quant", "2-2-8", "--out", tmp_path / "s.packed")[0] == 0
        assert run_cli(capsys, *train_args(tiny_data, tmp_path / "run"))[0] == 0
    finally:
        os.umask(old)
    for path in (tmp_path / "s.packed", tmp_path / "run" / "best" / "model.safetensors", tmp_path / "run" / "last.ckpt"):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_a_packed_model_trains_further_and_its_checkpoint_loads(capsys, packed, tiny_data, tmp_path):
    from minidq import Bart
    code, _, err = run_cli(capsys, "train", "--model", packed, "--data", tiny_data, "--out", tmp_path / "run",
                           "--max-steps", 1, "--batch-size", 8, "--eval-examples", 0)
    assert code == 0, err
    model = Bart.from_pretrained(tmp_path / "run" / "best")
    assert str(model.quant_config) == "2-2-8"
    code, out, err = run_cli(capsys, "evaluate", "--model", tmp_path / "run" / "best", "--data", tiny_data,
                             "--limit", 2, "--num-beams", 1)
    assert code == 0, err


@pytest.mark.parametrize("argv, named", [
    (["evaluate", "--quant", "8-8-8", "--limit", 1], "is a packed file, quantized already"),
    (["export", "--quant", "8-8-8"], "is a packed file, quantized already"),
    (["distill", "--max-steps", 1], "the teacher must be a full-precision checkpoint folder"),
    (["seqkd", "--limit", 1], "the teacher must be a full-precision checkpoint folder"),
])
def test_packed_files_where_they_cannot_serve_are_refused(capsys, packed, tiny_data, tmp_path, argv, named):
    command, *rest = argv
    model_flag = "--teacher" if command in ("distill", "seqkd") else "--model"
    out = {"evaluate": [], "export": ["--out", tmp_path / "x.packed"], "distill": ["--out", tmp_path / "run"],
           "seqkd": ["--out", tmp_path / "x.jsonl"]}[command]
    data = [] if command == "export" else ["--data", tiny_data]
    code, _, err = run_cli(capsys, command, model_flag, packed, *data, *out, *rest)
    assert_one_line_error(code, err, named)


def edit_metadata(src, dst, change) -> None:
    """A copy of a packed file whose metadata `change` edits, with its checksum made to match (a
    crafted file: the checksum catches damage, not intent)."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    from minidq.deploy.packed_file import checksum

    with safe_open(str(src), "pt") as f:
        metadata, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    change(metadata)
    metadata["sha256"] = checksum(tensors, metadata)
    save_file(tensors, str(dst), metadata=metadata)


@pytest.mark.parametrize("change, named", [
    (lambda m: m.update(tensors=m["tensors"].replace('"packing":"bits"', '"packing":"nibbles"', 1)), "packing 'nibbles'"),
    (lambda m: m.update(tensors=m["tensors"].replace('"scheme":"ternary",', "", 1)), "spec without a valid scheme"),
    (lambda m: m.update(tensors="{not json"), "metadata 'tensors' is not valid JSON"),
    (lambda m: m.update(quant_config='{"weight_bits": 2, "colour": 1}'), "quant_config"),
    (lambda m: m.update(config='{"model_type": "bart"}'), "config: missing required key"),
])
def test_crafted_packed_metadata_is_one_line(capsys, packed, tmp_path, change, named):
    edit_metadata(packed, tmp_path / "crafted.packed", change)
    for argv in (["evaluate", "--model", tmp_path / "crafted.packed", "--data", DATA, "--limit", 1],
                 ["info", tmp_path / "crafted.packed"]):
        code, _, err = run_cli(capsys, *argv)
        assert_one_line_error(code, err, "crafted.packed", named)
        assert len(err) < 600, err


def test_info_checks_the_teachers_checksum_too(capsys, packed, tmp_path):
    damaged = tmp_path / "damaged.packed"
    data = bytearray(packed.read_bytes())
    data[-100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "info", packed, "--teacher", damaged)
    assert_one_line_error(code, err, "damaged.packed", "checksum")


def test_config_beside_model_is_refused(capsys, tiny_data, tmp_path):
    code, _, err = run_cli(capsys, "train", "--model", TEACHER, "--config", tiny_data / "tiny.json",
                           "--data", tiny_data, "--out", tmp_path / "run", "--max-steps", 1)
    assert_one_line_error(code, err, "not both")


# ---- broken checkpoints and configs: one line, before work

def test_a_checkpoint_with_nan_weights_is_refused(capsys, teacher_copy):
    from safetensors.torch import load_file, save_file
    state = load_file(teacher_copy / "model.safetensors")
    state["model.encoder.layers.0.fc1.weight"][0, 0] = float("nan")
    save_file(state, teacher_copy / "model.safetensors", metadata={"format": "pt"})
    for argv in (["evaluate", "--model", teacher_copy, "--data", DATA, "--limit", 1],
                 ["export", "--model", teacher_copy, "--out", teacher_copy.parent / "x.packed"],
                 ["distill", "--teacher", teacher_copy, "--data", DATA, "--out", teacher_copy.parent / "run"]):
        code, _, err = run_cli(capsys, *argv)
        assert_one_line_error(code, err, "NaN or infinite", "encoder.layers.0.fc1.weight")


def test_the_shipped_teachers_know_their_tokenizers(capsys, teacher_copy):
    """The QA task's tokenizer has 4000 tokens too: in the summarization teacher's folder it gave
    ROUGE 0.00 without a word."""
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        shutil.copy(DATA.parent / "qa" / name, teacher_copy / name)
    code, _, err = run_cli(capsys, "evaluate", "--model", teacher_copy, "--data", DATA, "--limit", 1)
    assert_one_line_error(code, err, "not the one the model was trained with")


def test_another_tokenizer_of_the_same_size_is_caught(capsys, tiny_data, tmp_path):
    from minidq import Tokenizer
    assert run_cli(capsys, *train_args(tiny_data, tmp_path / "run"))[0] == 0
    best = tmp_path / "run" / "best"
    assert run_cli(capsys, "evaluate", "--model", best, "--data", tiny_data, "--limit", 1, "--num-beams", 1)[0] == 0
    texts = [json.loads(line)["source"][::-1] for line in (DATA / "train.jsonl").read_text().splitlines()[:2000]]
    other = Tokenizer.train(texts, vocab_size=4000)
    assert other.vocab_size == 4000
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (best / name).unlink(missing_ok=True)
    other.save_pretrained(best)
    code, _, err = run_cli(capsys, "evaluate", "--model", best, "--data", tiny_data, "--limit", 1)
    assert_one_line_error(code, err, "not the one the model was trained with")


@pytest.mark.parametrize("change, named", [
    ({"d_model": 10**12}, "d_model: 1000000000000 is beyond any BART"),
    ({"max_position_embeddings": 1e30}, "max_position_embeddings: 1e+30 is not an integer"),
    ({"init_std": -1}, "init_std"), ({"dropout": float("nan")}, "dropout"), ({"attention_dropout": 1.0}, "attention_dropout"),
    ({"pad_token_id": 99999}, "pad_token_id: 99999 is not a token id"),
    ({"decoder_start_token_id": 99999}, "decoder_start_token_id: 99999"),
])
def test_absurd_config_values_are_named(capsys, tiny_data, tmp_path, change, named):
    config = {**json.loads((tiny_data / "tiny.json").read_text()), **change}
    (tmp_path / "c.json").write_text(json.dumps(config))
    code, _, err = run_cli(capsys, "train", "--config", tmp_path / "c.json", "--data", tiny_data,
                           "--out", tmp_path / "run", "--max-steps", 1)
    assert_one_line_error(code, err, "c.json", named)


def test_an_index_without_weight_map_is_named(capsys, teacher_copy):
    (teacher_copy / "model.safetensors").rename(teacher_copy / "shard-1.safetensors")
    (teacher_copy / "model.safetensors.index.json").write_text('{"metadata": {}}')
    code, _, err = run_cli(capsys, "evaluate", "--model", teacher_copy, "--data", DATA, "--limit", 1)
    assert_one_line_error(code, err, "index.json", "weight_map")


# ---- damaged checkpoints, full disks, a changed model: said as such

def test_a_bit_flipped_checkpoint_is_reported_damaged_not_diverged(capsys, tiny_data, tmp_path):
    out = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_data, out))[0] == 0
    data = bytearray((out / "last.ckpt").read_bytes())
    data[len(data) // 2] ^= 0x40  # inside the weights: torch.load reads it without complaint
    (out / "last.ckpt").write_bytes(bytes(data))
    code, _, err = run_cli(capsys, *train_args(tiny_data, out, "--resume", "--max-steps", 4))
    assert_one_line_error(code, err, "last.ckpt", "damaged")
    assert "diverged" not in err


def test_resume_anyway_across_a_model_change_is_one_line(capsys, tiny_data, tmp_path):
    assert run_cli(capsys, *train_args(tiny_data, tmp_path / "run"))[0] == 0
    config = {**json.loads((tiny_data / "tiny.json").read_text()), "d_model": 64}
    (tmp_path / "wide.json").write_text(json.dumps(config))
    argv = [a if a != tiny_data / "tiny.json" else tmp_path / "wide.json" for a in train_args(tiny_data, tmp_path / "run")]
    code, _, err = run_cli(capsys, *argv, "--resume-anyway", "--max-steps", 4)
    assert_one_line_error(code, err, "another shape", "--overwrite")


def full_disk(*args, **kwargs):
    import errno
    import os
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_keeps_the_previous_checkpoint_and_best(capsys, tiny_data, tmp_path, monkeypatch):
    import torch
    out = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_data, out))[0] == 0
    before = {"last.ckpt": (out / "last.ckpt").read_bytes()}

    def torch_save_fails(obj, f, *args, **kwargs):  # what torch.save says when the disk fills up
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/3: file write failed")
    monkeypatch.setattr(torch, "save", torch_save_fails)
    code, _, err = run_cli(capsys, *train_args(tiny_data, out, "--resume-anyway", "--max-steps", 4))
    assert code == 2 and "Traceback" not in err
    assert_one_line_error(code, err.splitlines()[-1], "last.ckpt", "is the disk full?", "the previous last.ckpt is intact")
    assert (out / "last.ckpt").read_bytes() == before["last.ckpt"]
    monkeypatch.undo()

    before["best"] = snapshot(out / "best")  # (the failed resume above saved a better best/ before last.ckpt)
    monkeypatch.setattr("minidq.atomic.save", full_disk)  # safetensors' bytes for model.safetensors
    code, _, err = run_cli(capsys, *train_args(tiny_data, out, "--resume-anyway", "--max-steps", 4))
    assert code == 2 and "Traceback" not in err
    assert_one_line_error(code, err.splitlines()[-1], "best", "No space left on device", "intact")
    assert snapshot(out / "best") == before["best"]
    assert not [p for p in out.iterdir() if p.name.startswith(".best")]


def test_a_full_disk_while_packing_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("minidq.atomic.save", full_disk)
    code, _, err = run_cli(capsys, "export", "--model", TEACHER, "--quant", "2-2-8", "--out", tmp_path / "s.packed")
    assert_one_line_error(code, err, "s.packed", "No space left on device", "nothing was written")
    assert list(tmp_path.iterdir()) == []


# ---- missing paths, odd numbers, Ctrl-C at start-up

def test_a_missing_data_folder_is_named_first(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--config", tmp_path / "c.json", "--data", tmp_path / "nowhere",
                           "--out", tmp_path / "run")
    assert_one_line_error(code, err, "--data", "nowhere: no such folder")
    (tmp_path / "some").mkdir()
    code, _, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", tmp_path / "some")
    assert_one_line_error(code, err, "no test.jsonl")


def test_seqkd_out_a_folder_fails_before_generating(capsys, tiny_data, tmp_path):
    code, _, err = run_cli(capsys, "seqkd", "--teacher", TEACHER, "--data", tiny_data, "--out", tmp_path)
    assert_one_line_error(code, err, "is a folder")


@pytest.mark.parametrize("argv", [["train", "--seed", str(10**23)], ["demo", "--test-examples", "-5"],
                                  ["demo", "--steps", "0"]])
def test_numbers_out_of_range_are_refused(capsys, argv):
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, argv[1])


def test_blank_lines_and_bad_facts_in_a_split(capsys, tiny_data, tmp_path):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    lines = (data / "test.jsonl").read_text().splitlines()
    (data / "test.jsonl").write_text("\n".join(lines[:2] + [""] + lines[2:]) + "\n")  # a blank line: skipped alike
    code, out, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", data, "--limit", 4, "--num-beams", 1)
    assert code == 0, err
    record = json.loads(lines[0])
    (data / "test.jsonl").write_text(json.dumps({**record, "facts": [1, 2]}) + "\n" + "\n".join(lines[1:]) + "\n")
    code, _, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", data, "--limit", 4, "--num-beams", 1)
    assert_one_line_error(code, err, "test.jsonl:1", "'facts' should be a list of strings")
    assert "decoding:" not in err  # refused before any generation


def test_a_lone_surrogate_is_a_bad_line(capsys, tiny_data, tmp_path):
    data = shutil.copytree(tiny_data, tmp_path / "data")
    with open(data / "train.jsonl", "a") as f:
        f.write('{"source": "broken \\ud800 text", "target": "a summary"}\n')
    n = len((data / "train.jsonl").read_text().splitlines())
    code, _, err = run_cli(capsys, *train_args(data, tmp_path / "run"))
    assert_one_line_error(code, err, f"train.jsonl:{n}", "lone surrogate")
    code, _, err = run_cli(capsys, *train_args(data, tmp_path / "run2", "--skip-bad-lines"))
    assert code == 0 and "minidq: warning: skipped 1 bad line(s)" in err, err


def test_ctrl_c_during_start_up_is_one_line():
    """Ctrl-C while torch loads (the first second or two of every command): a KeyboardInterrupt
    raised from inside `import torch`, deterministically, instead of a signal raced against it."""
    import subprocess
    import sys
    from test_cli import ROOT
    script = ("import builtins, sys\n"
              "real = builtins.__import__\n"
              "def interrupted(name, *args, **kwargs):\n"
              "    if name == 'torch':\n"
              "        raise KeyboardInterrupt\n"
              "    return real(name, *args, **kwargs)\n"
              "builtins.__import__ = interrupted\n"
              "from minidq.__main__ import entry\n"
              "sys.exit(entry())\n")
    result = subprocess.run([sys.executable, "-c", script, "info", "x.packed"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 130 and result.stderr.strip() == "minidq: interrupted", result.stderr


def test_help_shows_the_defaults(capsys):
    code, out, _ = run_cli(capsys, "distill", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for shown in ("peak learning rate (AdamW; default: the --recipe's", "(default: 6% of the run)",
                  "and checkpoints (default: 500)", "passes over the training split (default: 10)"):
        assert shown in flat, shown


def test_warm_up_is_a_share_of_the_run_and_qat_writes_a_packed_file(capsys, tiny_data, tmp_path):
    from minidq.export import load_packed
    argv = train_args(tiny_data, tmp_path / "run", "--quant", "2-2-8", "--max-steps", 50, "--eval-every", 50)
    at = argv.index("--warmup-steps")
    code, out, err = run_cli(capsys, *argv[:at], *argv[at + 2:])
    assert code == 0, err
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines() if '"lr"' in line]
    first = log[0]  # logged at step 20 with the rate of step 19: warm-up over 6% of 50 steps (3), then decay
    assert first["step"] == 20 and first["lr"] == pytest.approx(5e-4 * (50 - 19) / (50 - 3))
    assert str(load_packed(tmp_path / "run" / "student.packed").quant_config) == "2-2-8"
    assert json.loads(out.splitlines()[-1])["packed"].endswith("student.packed")


def test_a_tokenizer_smaller_than_asked_says_why(capsys, tiny_data, tmp_path):
    code, out, err = run_cli(capsys, "tokenizer", "--data", tiny_data, "--vocab-size", 4000, "--out", tmp_path / "tok")
    assert code == 0, err
    assert "minidq: warning: asked for 4000 tokens, got" in err and "--min-frequency 2" in err


def test_a_position_table_far_beyond_the_data_is_pointed_out(capsys, tiny_data, tmp_path):
    """A 256-position table for 62-token sources made the positions 22.6% of a packed student."""
    code, _, err = run_cli(capsys, *train_args(tiny_data, tmp_path / "run", "--max-source-length", 40,
                                               "--max-target-length", 40))
    assert code == 0, err
    assert "minidq: warning: max_position_embeddings 256 is 6.4x the longest training sequence (40 tokens)" in err
    assert "max_position_embeddings 64 in the config would do" in err


def test_a_long_validation_source_beyond_the_teachers_positions_is_cut(capsys, tmp_path):
    """The translation teacher has 64 positions: one longer validation source used to end the run at
    its first evaluation, after the training, with nothing saved."""
    source = DATA.parent / "translation"
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid"):
        lines = (source / f"{split}.jsonl").read_text().splitlines()[:8]
        if split == "valid":
            record = json.loads(lines[0])
            lines[0] = json.dumps({**record, "source": " ".join([record["source"]] * 6)})
        (data / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(capsys, "distill", "--teacher", source / "teacher", "--data", data, "--out", tmp_path / "r",
                             "--layers", "1-1", "--max-steps", 1, "--batch-size", 4, "--eval-examples", 8,
                             "--metric", "bleu")
    assert code == 0, err
    assert "sources were longer than 64 tokens and were cut there" in err
    assert (tmp_path / "r" / "student.packed").is_file()


def test_export_into_a_new_folder_makes_it(capsys, tmp_path):
    """It used to fail naming a temporary file."""
    out = tmp_path / "new" / "folder" / "s.packed"
    assert run_cli(capsys, "export", "--model", TEACHER, "--quant", "2-2-8", "--out", out)[0] == 0
    assert out.is_file()


def test_no_progress_bars_into_a_file_or_with_no_progress(capsys, tiny_data, tmp_path):
    """Bars redrawn into a redirected log made it 245 KB for 1,500 steps."""
    code, out, err = run_cli(capsys, *train_args(tiny_data, tmp_path / "a", "--max-steps", 4))
    assert code == 0 and "step 4: val_loss" in out and "it/s" not in out + err  # capsys: not a terminal
    from minidq.cli import build_parser, progress
    args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--no-progress"])
    assert progress(args) is False
