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
TEACHER = ROOT / "data_samples" / "summarization" / "teacher"
DATA = ROOT / "data_samples" / "summarization"
COMMANDS = ("train", "evaluate", "generate", "demo")
FAST = ["--num-beams", "1", "--max-length", "48"]  # greedy, short: the CLI is under test, not the search


pytestmark = pytest.mark.usefixtures("one_thread")


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
    # the teacher learned the task (lead-30 baseline: 29); references are one of many phrasings,
    # so ROUGE-L stays well below 100 even for right answers, and the facts are scored too
    assert scores["rougeL"] > 50
    facts = {f.split()[0]: float(f.split()[1]) for f in line.split(",") if f.strip().startswith("facts_")}
    assert set(facts) == {"facts_exact", "facts_fact_f1"} and facts["facts_fact_f1"] > 50
    assert len(predictions.read_text().splitlines()) == 20


def test_evaluate_post_training_quantization(capsys):
    # 8 examples: a fake-quantized model rounds every weight and activation at each decoding step (slow)
    code, out, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", DATA, "--limit", 8, *FAST,
                             "--quant", "8-8-8")
    assert code == 0, err
    assert out.strip().splitlines()[-1].startswith("test: 8 examples")
    quantized = parse_scores(out.strip().splitlines()[-1])["rougeL"]
    code, out, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", DATA, "--limit", 8, *FAST)
    assert abs(quantized - parse_scores(out.strip().splitlines()[-1])["rougeL"]) < 10  # 8-bit PTQ costs little


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


# ---- issue 13: every bad input is one line (exit 2), never a traceback

@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A small data folder (16 train, 8 valid, 8 test examples) with the teacher's tokenizer, and a tiny config."""
    root = tmp_path_factory.mktemp("tiny")
    rows = [json.loads(line) for line in (DATA / "train.jsonl").read_text().splitlines()[:32]]
    for split, part in (("train", rows[:16]), ("valid", rows[16:24]), ("test", rows[24:])):
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    Tokenizer.from_pretrained(TEACHER).save_pretrained(root)
    (root / "tiny.json").write_text(json.dumps({  # no vocab_size: taken from the tokenizer
        "model_type": "bart", "d_model": 32, "encoder_layers": 1, "decoder_layers": 1,
        "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
        "max_position_embeddings": 256}))
    return root


def train_args(data, out, *extra):
    return ["train", "--data", data, "--config", data / "tiny.json", "--out", out, "--max-steps", 2,
            "--batch-size", 8, "--warmup-steps", 0, "--eval-every", 2, "--eval-examples", 0,
            *extra]


def test_train_config_takes_vocab_size_from_the_tokenizer(capsys, tiny_data, tmp_path):
    code, out, err = run_cli(capsys, *train_args(tiny_data, tmp_path / "run"))
    assert code == 0, err
    assert Bart.from_pretrained(tmp_path / "run" / "best").config.vocab_size == 4000


def test_rows_are_cut_at_the_position_table(capsys, tiny_data, tmp_path):
    """--max-source-length beyond max_position_embeddings used to end in an IndexError."""
    config = json.loads((tiny_data / "tiny.json").read_text())
    (tmp_path / "short.json").write_text(json.dumps({**config, "max_position_embeddings": 16}))
    code, _, err = run_cli(capsys, "train", "--data", tiny_data, "--config", tmp_path / "short.json",
                           "--out", tmp_path / "run", "--max-steps", 1, "--batch-size", 8, "--eval-examples", 0)
    assert code == 0, err
    assert "train: truncated 16 sources (to 16 tokens)" in err


@pytest.mark.parametrize("flags, named", [
    (["--eval-every", 0], "--eval-every"),
    (["--grad-accum", 0], "--grad-accum"),
    (["--max-steps", -5], "--max-steps"),
    (["--epochs", 0], "--epochs"),
    (["--batch-size", 0], "--batch-size"),
    (["--max-source-length", 1], "--max-source-length"),
    (["--device", "nonsense"], "nonsense"),
])
def test_bad_training_flags(capsys, tiny_data, tmp_path, flags, named):
    code, _, err = run_cli(capsys, *train_args(tiny_data, tmp_path / "run", *flags))
    assert_one_line_error(code, err, named)
    assert code == 2 and not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda(capsys, tiny_data, tmp_path):
    code, _, err = run_cli(capsys, *train_args(tiny_data, tmp_path / "run", "--device", "cuda"))
    assert_one_line_error(code, err, "'cuda'", "CUDA is not available")


@pytest.mark.parametrize("command", ["evaluate", "generate"])
def test_batch_size_zero(capsys, command):
    extra = ["--data", DATA] if command == "evaluate" else ["some text"]
    code, _, err = run_cli(capsys, command, "--model", TEACHER, "--batch-size", 0, *extra)
    assert_one_line_error(code, err, "--batch-size")


def test_evaluate_limit_minus_one_is_refused(capsys):
    """--limit -1 used to drop the last example silently."""
    code, _, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", DATA, "--limit", -1)
    assert_one_line_error(code, err, "--limit")


def test_out_is_a_file_or_a_run(capsys, tiny_data, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, *train_args(tiny_data, tmp_path / "file"))
    assert_one_line_error(code, err, "file: exists and is not a folder")
    code, _, err = run_cli(capsys, *train_args(tiny_data, tmp_path / "file" / "below"))
    assert_one_line_error(code, err, "below")
    code, _, err = run_cli(capsys, "export", "--model", TEACHER, "--out", tmp_path)
    assert_one_line_error(code, err, "is a folder")

    assert run_cli(capsys, *train_args(tiny_data, tmp_path / "run"))[0] == 0
    code, _, err = run_cli(capsys, *train_args(tiny_data, tmp_path / "run"))
    assert_one_line_error(code, err, "not empty", "--overwrite")
    assert run_cli(capsys, *train_args(tiny_data, tmp_path / "run", "--overwrite"))[0] == 0
    code, _, err = run_cli(capsys, *train_args(tiny_data, tmp_path / "run", "--resume", "--lr", 1e-3))
    assert_one_line_error(code, err, "train.lr", "--resume-anyway")
    assert run_cli(capsys, *train_args(tiny_data, tmp_path / "run", "--resume-anyway", "--lr", 1e-3))[0] == 0


def test_distill_lr_1e6_exits_nonzero_without_a_student(capsys, tiny_data, tmp_path):
    """The issue's first case: this exported a diverged student and exited 0."""
    code, _, err = run_cli(capsys, "distill", "--teacher", TEACHER, "--data", tiny_data, "--out", tmp_path / "d",
                           "--layers", "1-1", "--max-steps", 5, "--batch-size", 4, "--eval-every", 1,
                           "--eval-examples", 1, "--warmup-steps", 0, "--lr", 1e6, "--max-source-length", 64,
                           "--max-target-length", 16)
    assert code == 2
    assert "diverged" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert not (tmp_path / "d" / "student.packed").exists()


def checkpoint_with_tokenizer(tmp_path, vocab_size: int, tokenizer: Tokenizer):
    from minidq import BartConfig
    directory = tmp_path / f"model-{vocab_size}"
    Bart(BartConfig(vocab_size=vocab_size, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                    decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                    max_position_embeddings=64)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.parametrize("difference", [+8, -8])
def test_tokenizer_of_another_size(capsys, tmp_path, difference):
    """Smaller: garbage and ROUGE 0 with exit 0. Larger: an IndexError traceback."""
    tok = Tokenizer.from_pretrained(TEACHER)
    model = checkpoint_with_tokenizer(tmp_path, tok.vocab_size + difference, tok)
    code, _, err = run_cli(capsys, "generate", "--model", model, "some text")
    assert_one_line_error(code, err, f"the tokenizer has {tok.vocab_size} tokens", "do not belong together")


def test_damaged_files(capsys, tmp_path):
    tok = Tokenizer.from_pretrained(TEACHER)
    model = checkpoint_with_tokenizer(tmp_path, tok.vocab_size, tok)
    (model / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    code, _, err = run_cli(capsys, "generate", "--model", model, "text")
    assert_one_line_error(code, err, "cannot read the tokenizer files")

    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "d_model": "abc"}))
    code, _, err = run_cli(capsys, "generate", "--model", model, "text")
    assert_one_line_error(code, err, "config.json: d_model: 'abc' is not an integer")


def test_non_utf8_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", stdin(b"fine\ncaf\xe9\n"))
    code, _, err = run_cli(capsys, "generate", "--model", TEACHER)
    assert_one_line_error(code, err, "<stdin>:2: not valid UTF-8")


def test_debug_shows_the_traceback(capsys, tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["evaluate", "--model", str(tmp_path / "nope"), "--data", str(DATA), "--debug"])


def test_ctrl_c_is_one_line_and_exit_130(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr("minidq.cli.cmd_generate", interrupted)
    code, _, err = run_cli(capsys, "generate", "--model", TEACHER, "x")
    assert code == 130 and err == "minidq: interrupted\n"


def test_a_bug_is_still_one_line(capsys, monkeypatch):
    def bug(args):
        raise TypeError("unsupported operand")
    monkeypatch.setattr("minidq.cli.cmd_generate", bug)
    code, _, err = run_cli(capsys, "generate", "--model", TEACHER, "x")
    assert code == 1 and err.count("\n") == 1 and "unexpected TypeError" in err and "--debug" in err


def test_predictions_into_a_new_folder(capsys, tmp_path):
    """Used to fail after all the generation had run."""
    predictions = tmp_path / "new" / "folder" / "preds.txt"
    code, _, err = run_cli(capsys, "evaluate", "--model", TEACHER, "--data", DATA, "--limit", 2, *FAST,
                           "--predictions", predictions)
    assert code == 0, err
    assert len(predictions.read_text().splitlines()) == 2


def test_export_trits_without_three_levels_and_info_checksum(capsys, tmp_path):
    code, _, err = run_cli(capsys, "export", "--model", TEACHER, "--quant", "8-8-8", "--packing", "trits",
                           "--out", tmp_path / "s.packed")
    assert_one_line_error(code, err, "trits", "8-8-8")
    assert not (tmp_path / "s.packed").exists()

    packed = tmp_path / "t.packed"
    assert run_cli(capsys, "export", "--model", TEACHER, "--quant", "2-2-8", "--out", packed)[0] == 0
    data = bytearray(packed.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte inside a tensor
    packed.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "info", packed)
    assert_one_line_error(code, err, "checksum mismatch")


def test_tokenizer_command(capsys, tiny_data, tmp_path):
    out = tmp_path / "tok"
    code, stdout, err = run_cli(capsys, "tokenizer", "--data", tiny_data, "--vocab-size", 300, "--out", out)
    assert code == 0, err
    tok = Tokenizer.from_pretrained(out)
    assert tok.vocab_size <= 300 and f"{tok.vocab_size} tokens" in stdout
    assert tok.decode(tok.encode("a new sentence")) == "a new sentence"
    code, _, err = run_cli(capsys, "tokenizer", "--data", tiny_data, "--vocab-size", 300, "--out", out)
    assert_one_line_error(code, err, "already holds a tokenizer", "--overwrite")
    code, _, err = run_cli(capsys, "tokenizer", "--data", tiny_data, "--vocab-size", 100, "--out", tmp_path / "t2")
    assert_one_line_error(code, err, "--vocab-size 100")


def test_distill_prune_heads_trains_packs_and_info_lists_the_heads(capsys, tiny_data, tmp_path):
    code, out, err = run_cli(capsys, "distill", "--teacher", TEACHER, "--data", tiny_data, "--out", tmp_path / "d",
                             "--layers", "2-1", "--max-steps", 2, "--batch-size", 4, "--eval-every", 2,
                             "--eval-examples", 1, "--prune-heads", 0.5, "--prune-batches", 2, "--prune-rounds", 2,
                             "--max-source-length", 64, "--max-target-length", 16, "--no-progress")
    assert code == 0, err
    from minidq.export import load_packed
    student = load_packed(tmp_path / "d" / "student.packed")
    heads = [a.num_heads for a in student.attention_modules()]
    total = 2 * student.config.encoder_attention_heads + 2 * student.config.decoder_attention_heads
    assert sum(heads) == total // 2 and min(heads) >= 1
    code, out, err = run_cli(capsys, "info", tmp_path / "d" / "student.packed")
    assert code == 0, err
    assert f"attention heads: {total // 2} of {total} kept" in out
    code, _, err = run_cli(capsys, "distill", "--teacher", TEACHER, "--data", tiny_data, "--out", tmp_path / "e",
                           "--layers", "1-1", "--max-steps", 1, "--prune-heads", 1)
    assert code == 2 and "fraction" in err
