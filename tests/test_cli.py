"""The command line: every command's --help, evaluate and generate on the shipped teacher,
one clear line (never a traceback) for each kind of bad input, and a QAT run whose checkpoint
reloads quantized. Plus: transformers loads the shipped teacher and computes the same logits.

Most commands run in-process through `minidq.cli.main` (fast: torch is imported once); one
bad-input case runs as a real `python -m minidq` subprocess, to see exactly what a user sees.
"""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minidq import Bart, Tokenizer
from minidq.cli import main

ROOT = Path(__file__).resolve().parent.parent
TEACHER = ROOT / "data_samples" / "teacher"
DATA = ROOT / "data_samples" / "summarization"
COMMANDS = ("train", "evaluate", "generate", "demo")
FAST = ["--num-beams", "1", "--max-length", "48"]  # greedy, short: the CLI is under test, not the search


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a busy machine, threads that wait for each other make these
    small models many times slower (measured: 7 s with one thread, 40-60 s with two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`minidq ARGV` in-process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse exits (--help, bad flags)
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def stdin(data: bytes) -> io.TextIOWrapper:
    """A stand-in for sys.stdin holding these bytes (generate reads its .buffer, the raw bytes)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")


def assert_one_line_error(code: int, err: str, *expected: str) -> None:
    lines = err.strip().splitlines()
    assert code not in (0, None)
    assert len(lines) == 1, err
    assert lines[0].startswith("minidq: error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], err


# ---- --help

@pytest.mark.parametrize("command", COMMANDS)
def test_help(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    assert out.startswith(f"usage: minidq {command}")


def test_help_subprocess():
    """`python -m minidq CMD --help` works from a plain checkout (PYTHONPATH = the repo root)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "minidq", "evaluate", "--help"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--quant" in result.stdout and "--limit" in result.stdout


# ---- evaluate and generate on the shipped teacher

def parse_scores(line: str) -> dict[str, float]:
    """'test: 20 examples, rouge1 97.01, rouge2 ..., 12.3 examples/s' -> {'rouge1': 97.01, ...}."""
    fields = [f.split() for f in line.split(":", 1)[1].split(",")]
    return {f[0]: float(f[1]) for f in fields if len(f) == 2 and f[0].startswith("rouge")}


def test_evaluate_prints_rouge(capsys, tmp_path):
    predictions = tmp_path / "preds.txt"
    code, out, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", DATA, "--limit", 20, *FAST,
                             "--predictions", predictions)
    assert code == 0, err
    line = out.strip().splitlines()[-1]
    assert line.startswith("test: 20 examples")
    scores = parse_scores(line)
    assert set(scores) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert scores["rougeL"] > 80  # the teacher learned the task (lead-30 baseline: 28)
    assert len(predictions.read_text().splitlines()) == 20


def test_evaluate_post_training_quantization(capsys):
    # 8 examples: a fake-quantized model rounds every weight and activation at each decoding step (slow)
    code, out, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", DATA, "--limit", 8, *FAST,
                             "--quant", "8-8-8")
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("test: 8 examples")
    assert parse_scores(out.strip().splitlines()[-1])["rougeL"] > 80  # 8-bit PTQ costs almost nothing


def test_generate_from_arguments_and_stdin(capsys, monkeypatch):
    sources = [json.loads(line)["source"] for line in (DATA / "test.jsonl").read_text().splitlines()[:2]]
    code, out, err = run_cli(capsys, "generate", "--model", TEACHER, *FAST, sources[0])
    assert code == 0, err
    from_argument = out.strip().splitlines()
    assert len(from_argument) == 1 and len(from_argument[0].split()) >= 5

    monkeypatch.setattr(sys, "stdin", stdin((sources[0] + "\n\n" + sources[1] + "\n").encode()))
    code, out, err = run_cli(capsys, "generate", "--model", TEACHER, *FAST)
    assert code == 0, err
    from_stdin = out.strip().splitlines()
    assert len(from_stdin) == 2  # one summary per non-blank input line
    assert from_stdin[0] == from_argument[0]


def test_generate_without_any_text(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", stdin(b"\n"))
    code, _, err = run_cli(capsys, "generate", "--model", TEACHER)
    assert_one_line_error(code, err, "nothing to generate")


# ---- bad input: one line on stderr starting with "minidq", a non-zero exit, no traceback

def test_missing_model_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", "--model", tmp_path / "nope", "--data", DATA)
    assert_one_line_error(code, err, "nope")


def test_missing_data_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", tmp_path / "nodata", "--limit", 2)
    assert_one_line_error(code, err, "nodata")


def test_malformed_jsonl_line(capsys, tmp_path):
    lines = [json.dumps({"source": "a b c", "target": "a"}), '{"source": "a b c", "target": ', ""]
    (tmp_path / "test.jsonl").write_text("\n".join(lines))
    code, _, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", tmp_path)
    assert_one_line_error(code, err, f"{tmp_path / 'test.jsonl'}:2:", "malformed JSON")


def test_malformed_jsonl_line_subprocess(tmp_path):
    """What a user sees in a terminal: exactly one line on stderr, exit status 2."""
    (tmp_path / "test.jsonl").write_text('{"source": "a b c", "target": "a"}\n[1, 2]\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "minidq", "evaluate", "--model", str(TEACHER),
                             "--data", str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert_one_line_error(result.returncode, result.stderr, "test.jsonl:2:", "expected a JSON object")


# ---- quantization-aware training through the CLI

def test_train_quantized_writes_a_quantized_checkpoint(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [json.loads(line) for line in (DATA / "train.jsonl").read_text().splitlines()[:24]]
    for split, part in (("train", rows[:16]), ("valid", rows[16:])):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({
        "model_type": "bart", "vocab_size": Tokenizer.from_pretrained(TEACHER).vocab_size, "d_model": 32,
        "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2, "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": 256}))
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "train", "--data", data, "--config", config, "--tokenizer", TEACHER,
                                "--out", out, "--quant", "2-2-8", "--max-steps", 3, "--batch-size", 8,
                                "--warmup-steps", 1, "--eval-examples", 0, "--max-source-length", 64,
                                "--max-target-length", 16)
    assert code == 0, err
    figures = json.loads(stdout.strip().splitlines()[-1])
    assert figures["step"] == 3 and figures["val_loss"] > 0

    best = out / "best"
    saved = json.loads((best / "quant_config.json").read_text())
    assert (saved["weight_bits"], saved["embedding_bits"], saved["activation_bits"]) == (2, 2, 8)
    model = Bart.from_pretrained(best)
    assert str(model.quant_config) == "2-2-8"
    assert type(model.shared).__name__ == "QuantEmbedding"
    assert type(model.encoder.layers[0].fc1).__name__ == "QuantLinear"


# ---- the shipped teacher is a real transformers checkpoint

def test_teacher_loads_in_transformers_with_the_same_logits():
    transformers = pytest.importorskip("transformers")
    hf = transformers.BartForConditionalGeneration.from_pretrained(TEACHER).eval()
    ours = Bart.from_pretrained(TEACHER).eval()
    tok = Tokenizer.from_pretrained(TEACHER)
    rows = [json.loads(line) for line in (DATA / "test.jsonl").read_text().splitlines()[:3]]
    enc = tok([r["source"] for r in rows])  # padded: rows have different lengths
    labels = tok([r["target"] for r in rows])["input_ids"]
    decoder_input_ids = ours.shift_right(labels)
    with torch.no_grad():
        ref = hf(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                 decoder_input_ids=decoder_input_ids).logits
        got = ours(enc["input_ids"], enc["attention_mask"], decoder_input_ids=decoder_input_ids).logits
    assert got.shape == ref.shape == (3, labels.shape[1], tok.vocab_size)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
