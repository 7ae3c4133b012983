"""The training loop: it learns, it is reproducible, it resumes exactly, it stops on a bad loss."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import minidq.train as train_module
from minidq import Bart, BartConfig, Tokenizer
from minidq.config import ConfigError
from minidq.errors import MinidqWarning
from minidq.data import Batches, Example, encode
from minidq.runs import load_checkpoint
from minidq.train import Interrupted, TrainConfig, TrainingError, train

WORDS = "red green blue cat dog fish one two three north south east west big small old new".split()
TINY = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64)


def toy_examples(n: int, seed: int) -> list[Example]:
    """A copy-the-first-three-words task: learnable in a few dozen steps by a tiny model."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        words = [WORDS[i] for i in torch.randint(len(WORDS), (8,), generator=g)]
        out.append(Example(" ".join(words), " ".join(words[:3])))
    return out


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    """A data folder (train/valid JSONL + tokenizer) and its in-memory pieces."""
    root = tmp_path_factory.mktemp("toy")
    splits = {"train": toy_examples(96, 0), "valid": toy_examples(16, 1)}
    for split, examples in splits.items():
        (root / f"{split}.jsonl").write_text(
            "".join(json.dumps({"source": e.source, "target": e.target}) + "\n" for e in examples))
    tokenizer = Tokenizer.train([e.source for e in splits["train"]], vocab_size=300)
    tokenizer.save_pretrained(root)
    config = BartConfig(vocab_size=tokenizer.vocab_size, **TINY)
    config.save_pretrained(root / "model")
    return root, tokenizer, splits, config


def run(toy_data, out_dir, steps=12, seed=0, loss_fn=train_module.task_loss, resume=False, overwrite=False,
        allow_changed_settings=False, on_eval=None, **overrides):
    root, tokenizer, splits, config = toy_data
    torch.manual_seed(seed)
    model = Bart(config)
    batches = {s: Batches(encode(ex, tokenizer, 32, 16).pairs, 16, tokenizer.pad_token_id,
                          shuffle=s == "train", seed=seed) for s, ex in splits.items()}
    cfg = TrainConfig(out_dir=str(out_dir), **{**dict(max_steps=steps, batch_size=16, lr=3e-3, warmup_steps=2,
                      eval_every=6, eval_examples=0, log_every=2, seed=seed), **overrides})
    figures = train(model, tokenizer, batches["train"], batches["valid"], splits["valid"], cfg, loss_fn=loss_fn,
                    resume=resume, overwrite=overwrite, allow_changed_settings=allow_changed_settings,
                    on_eval=on_eval)
    return model, figures


def test_loss_goes_down_and_files_are_written(toy_data, tmp_path):
    model, figures = run(toy_data, tmp_path, steps=30)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < 0.7 * losses[0]
    assert {"ce", "lr", "grad_norm"} <= set(log[0])
    assert figures["val_loss"] < log[0]["loss"]
    assert (tmp_path / "last.ckpt").is_file() and (tmp_path / "best" / "model.safetensors").is_file()
    assert isinstance(Bart.from_pretrained(tmp_path / "best"), Bart)
    assert Tokenizer.from_pretrained(tmp_path / "best").vocab_size == toy_data[1].vocab_size
    assert load_checkpoint(tmp_path / "last.ckpt")["step"] == 30


def test_same_seed_same_weights(toy_data, tmp_path):
    a, _ = run(toy_data, tmp_path / "a")
    b, _ = run(toy_data, tmp_path / "b")
    c, _ = run(toy_data, tmp_path / "c", seed=1)
    for (name, p), q, r in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(p, q), name
    assert not all(torch.equal(p, r) for p, r in zip(a.state_dict().values(), c.state_dict().values()))


def test_nan_guard(toy_data, tmp_path):
    def inf_loss(model, batch):
        loss = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
        return loss * float("inf"), {"ce": float("inf")}

    root, tokenizer, splits, config = toy_data
    batches = Batches(encode(splits["train"], tokenizer, 32, 16).pairs, 16, tokenizer.pad_token_id)
    cfg = TrainConfig(out_dir=str(tmp_path), max_steps=5, batch_size=16, eval_examples=0)
    with pytest.raises(TrainingError, match=r"step 0: training diverged \(training loss inf.*nothing was saved"):
        train(Bart(config), tokenizer, batches, batches, splits["valid"], cfg, loss_fn=inf_loss)


def train_cli(root, out, *extra):
    return [sys.executable, "-m", "minidq", "train", "--data", str(root), "--config", str(root / "model"),
            "--out", str(out), "--max-steps", "40", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "4",
            "--eval-every", "10", "--eval-examples", "0", "--max-source-length", "32",
            "--max-target-length", "16", *extra]


def test_kill_and_resume_gives_the_same_weights(toy_data, tmp_path):
    root = toy_data[0]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    subprocess.run(train_cli(root, tmp_path / "straight"), check=True, env=env, capture_output=True)

    proc = subprocess.Popen(train_cli(root, tmp_path / "killed"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / "last.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_file() and load_checkpoint(ckpt)["step"] >= 20:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(ckpt)["step"]
    assert 0 < killed_at < 40, "the run should have been interrupted mid-training"

    subprocess.run(train_cli(root, tmp_path / "killed", "--resume"), check=True, env=env, capture_output=True)
    a = load_checkpoint(tmp_path / "straight" / "last.ckpt")["model"]
    b = load_checkpoint(ckpt)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (ckpt.parent / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps), "the resumed log continues where the checkpoint was, without repeats"
    best = load_file(tmp_path / "killed" / "best" / "model.safetensors")
    assert best  # the best/ checkpoint is a complete safetensors file


# ---- guards: the output folder, divergence, settings, resume (issue 13)

def test_bad_settings_are_refused_before_training():
    """max_steps=-5 and epochs=0 used to exit 0 without training; eval_every=0 divided by zero."""
    for bad in (dict(max_steps=-5), dict(epochs=0), dict(eval_every=0), dict(grad_accum=0), dict(batch_size=0),
                dict(lr=0.0), dict(lr=float("nan")), dict(metric="bleu2"), dict(device="gpu")):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            TrainConfig(**bad)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            TrainConfig(device="cuda")


def test_output_folder_of_another_run_is_refused(toy_data, tmp_path):
    """A second run into the same folder silently replaced best/ and appended to log.jsonl."""
    run(toy_data, tmp_path, steps=2)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    with pytest.raises(TrainingError, match="not empty.*--resume / --overwrite"):
        run(toy_data, tmp_path, steps=2)
    (tmp_path / "notes.txt").write_text("mine")
    run(toy_data, tmp_path, steps=2, overwrite=True)
    assert (tmp_path / "log.jsonl").read_text().splitlines() != lines + lines  # replaced, not appended
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == len(lines)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only what a run writes is removed
    with pytest.raises(TrainingError, match="not a folder"):
        run(toy_data, tmp_path / "notes.txt", steps=2)


def test_resume_without_a_checkpoint_is_refused(toy_data, tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        run(toy_data, tmp_path, steps=2, resume=True)


def test_divergence_stops_before_saving_it(toy_data, tmp_path):
    """The guard used to fire after last.ckpt held the diverged weights (and advise resuming from it)."""
    calls = []

    def exploding(model, batch):  # a sane loss for 3 steps, then a finite but absurd one
        loss = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
        calls.append(1)
        loss = loss * (1e12 if len(calls) > 3 else 1.0)
        return loss, {"ce": loss.item()}

    with pytest.raises(TrainingError, match=r"step 3: training diverged \(training loss [0-9.e+]+, the first "
                                            r"was.*last.ckpt keeps step 2"):
        run(toy_data, tmp_path, steps=6, eval_every=2, loss_fn=exploding)
    assert load_checkpoint(tmp_path / "last.ckpt")["step"] == 2


def test_validation_divergence_saves_nothing(toy_data, tmp_path, monkeypatch):
    """Item 1 of issue 13: a finite training loss with a NaN validation loss exported a diverged model."""
    monkeypatch.setattr(train_module, "evaluate_during_training", lambda *a: {"val_loss": float("nan")})
    with pytest.raises(TrainingError, match="validation loss nan.*nothing was saved"):
        run(toy_data, tmp_path, steps=4, eval_every=2)
    assert not (tmp_path / "last.ckpt").exists() and not (tmp_path / "best").exists()


def test_lr_1e6_fails_with_one_line_and_no_checkpoint(toy_data, tmp_path, capsys):
    """The issue's run: --lr 1e6 exited 0. Now the guard stops it, exit 2, no best/ is left."""
    from minidq.cli import main
    root = toy_data[0]
    code = main(["train", "--data", str(root), "--config", str(root / "model"), "--out", str(tmp_path / "r"),
                 "--max-steps", "5", "--batch-size", "4", "--eval-every", "1", "--eval-examples", "1",
                 "--warmup-steps", "0", "--lr", "1e6"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("minidq: error: step") and "diverged" in err[-1], err
    assert not (tmp_path / "r" / "best").exists()


def interrupt_at(call: int):
    """A task loss that raises KeyboardInterrupt (as Ctrl-C would) at its `call`-th use."""
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return train_module.task_loss(model, batch)
    return loss_fn


def log_records(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"}
            for line in path.read_text().splitlines()]


def test_ctrl_c_then_resume_gives_the_same_weights_and_log(toy_data, tmp_path):
    """Ctrl-C leaves a whole last.ckpt; resuming logs what the uninterrupted run logged (the first
    line after a resume used to divide a partial sum by log_every)."""
    straight, _ = run(toy_data, tmp_path / "straight", steps=12, log_every=4)
    with pytest.raises(Interrupted, match="stopped at step 7.*holds step 6; --resume"):
        run(toy_data, tmp_path / "stopped", steps=12, log_every=4, loss_fn=interrupt_at(8))
    resumed, _ = run(toy_data, tmp_path / "stopped", steps=12, log_every=4, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert log_records(tmp_path / "stopped" / "log.jsonl") == log_records(tmp_path / "straight" / "log.jsonl")


def test_on_eval_figures_join_each_evaluation_and_survive_a_resume(toy_data, tmp_path):
    """A learning curve (the recipe study's) is the on_eval figures in the log; a resumed run's log
    has the same curve as an uninterrupted one, and on_eval sees the model at each evaluation step."""
    def on_eval(model, step):
        return {"step_seen": float(step), "weight_sum": model.shared.weight.sum().item()}

    run(toy_data, tmp_path / "straight", steps=12, on_eval=on_eval)
    with pytest.raises(Interrupted):
        run(toy_data, tmp_path / "stopped", steps=12, loss_fn=interrupt_at(8), on_eval=on_eval)
    run(toy_data, tmp_path / "stopped", steps=12, resume=True, on_eval=on_eval)
    curves = [[r for r in log_records(tmp_path / name / "log.jsonl") if "val_loss" in r]
              for name in ("straight", "stopped")]
    assert [r["step_seen"] for r in curves[0]] == [6.0, 12.0] == [r["step"] for r in curves[0]]
    assert curves[0] == curves[1]
    assert curves[0][0]["weight_sum"] != curves[0][1]["weight_sum"]


def test_resume_refuses_changed_settings(toy_data, tmp_path):
    """A resume with another lr was accepted; one with another clip passed the str(quant) == '2-2-8' check."""
    from minidq.quant import QuantConfig, quantize
    root, tokenizer, splits, config = toy_data
    run(toy_data, tmp_path, steps=4, eval_every=2)
    with pytest.raises(TrainingError, match=r"train\.lr: 0\.003 -> 0\.001.*--resume-anyway"):
        run(toy_data, tmp_path, steps=4, eval_every=2, lr=1e-3, resume=True)
    run(toy_data, tmp_path, steps=4, eval_every=2, lr=1e-3, resume=True, allow_changed_settings=True)

    def quantized_run(out, clip, **kwargs):
        model = quantize(Bart(config), QuantConfig(2, 2, 8, clip_val=clip))
        batches = Batches(encode(splits["train"], tokenizer, 32, 16).pairs, 16, tokenizer.pad_token_id)
        cfg = TrainConfig(out_dir=str(out), max_steps=2, batch_size=16, eval_every=2, eval_examples=0)
        train(model, tokenizer, batches, batches, splits["valid"], cfg, **kwargs)

    quantized_run(tmp_path / "q", 2.5)
    with pytest.raises(TrainingError, match=r"quant\.clip_val: 2\.5 -> 2\.0"):
        quantized_run(tmp_path / "q", 2.0, resume=True)


def test_damaged_checkpoint_and_log_on_resume(toy_data, tmp_path):
    """A truncated last.ckpt is one clear error; a half-written last log line is dropped."""
    run(toy_data, tmp_path, steps=4, eval_every=2)
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"step": 3, "lo')  # killed mid-line
    run(toy_data, tmp_path, steps=6, eval_every=2, resume=True, allow_changed_settings=True)
    assert all(json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines())
    data = (tmp_path / "last.ckpt").read_bytes()
    (tmp_path / "last.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(TrainingError, match="last.ckpt: cannot read the checkpoint, it is truncated or damaged"):
        run(toy_data, tmp_path, steps=6, eval_every=2, resume=True)


def test_stale_temp_files_are_removed(toy_data, tmp_path):
    """SIGKILL during a checkpoint write leaves .last.ckpt.*.tmp: the next run clears it."""
    run(toy_data, tmp_path, steps=2)
    (tmp_path / ".last.ckpt.deadbeef.tmp").write_bytes(b"half a checkpoint")
    run(toy_data, tmp_path, steps=4, resume=True, allow_changed_settings=True)
    assert not list(tmp_path.glob(".*.tmp"))


# ---- a model that ignores its input (issue 13, item 9)

def ignore_the_source(model: Bart) -> Bart:
    """Cut the decoder off from the encoder: cross-attention outputs zero, frozen."""
    for layer in model.decoder.layers:
        layer.encoder_attn.out_proj.weight.data.zero_()
        layer.encoder_attn.out_proj.bias.data.zero_()
        layer.encoder_attn.out_proj.requires_grad_(False)
    return model


def test_a_model_that_ignores_its_input_is_reported(toy_data, tmp_path, capsys):
    root, tokenizer, splits, config = toy_data
    torch.manual_seed(0)
    model = ignore_the_source(Bart(config))
    batches = {s: Batches(encode(ex, tokenizer, 32, 16).pairs, 16, tokenizer.pad_token_id, shuffle=s == "train")
               for s, ex in splits.items()}
    cfg = TrainConfig(out_dir=str(tmp_path), max_steps=4, batch_size=16, lr=3e-3, warmup_steps=1, eval_every=2,
                      eval_examples=0)
    with pytest.warns(MinidqWarning, match="step 2: the validation loss barely depends on the source"):
        figures = train(model, tokenizer, batches["train"], batches["valid"], splits["valid"], cfg)
    assert abs(figures["input_gap"]) < 1e-4
    warnings = [r for r in map(json.loads, (tmp_path / "log.jsonl").read_text().splitlines()) if "warning" in r]
    assert [w["step"] for w in warnings] == [2, 4] and "ignoring its input" in warnings[0]["warning"]


def test_a_model_that_reads_its_input_has_a_large_gap():
    """The shipped teacher: its validation loss rises by nats when the sources are shuffled."""
    root = Path(__file__).resolve().parent.parent / "data_samples"
    teacher, tokenizer = Bart.from_pretrained(root / "summarization" / "teacher"), Tokenizer.from_pretrained(root / "summarization" / "teacher")
    from minidq.data import load_split
    valid = load_split(root / "summarization", "valid")[:16]
    batches = Batches(encode(valid, tokenizer, 256, 64).pairs, 8, tokenizer.pad_token_id, shuffle=False)
    figures = train_module.evaluate_during_training(teacher, tokenizer, batches, valid,
                                                    TrainConfig(eval_examples=0))
    assert figures["input_gap"] > 1.0, figures


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_ctrl_c_then_resume_on_cuda_is_exact(toy_data, tmp_path):
    """Dropout on a GPU draws from the CUDA generator: last.ckpt saves and restores its state too."""
    straight, _ = run(toy_data, tmp_path / "straight", steps=12, device="cuda")
    with pytest.raises(Interrupted):
        run(toy_data, tmp_path / "stopped", steps=12, device="cuda", loss_fn=interrupt_at(8))
    resumed, _ = run(toy_data, tmp_path / "stopped", steps=12, device="cuda", resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


# ---- mixed precision (issue 14)

def test_bf16_autocast_trains_a_quantized_model_on_the_cpu(toy_data, tmp_path):
    """--precision bf16: the forward runs under autocast (bfloat16 matmuls), the weights and the
    optimizer stay float32, the loss goes down, and the figures differ from fp32 only by rounding."""
    from minidq.quant import QuantConfig, quantize
    root, tokenizer, splits, config = toy_data
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = quantize(Bart(config), QuantConfig(2, 2, 8))
        batches = Batches(encode(splits["train"], tokenizer, 32, 16).pairs, 16, tokenizer.pad_token_id)
        cfg = TrainConfig(out_dir=str(tmp_path / precision), max_steps=8, batch_size=16, lr=3e-3, warmup_steps=2,
                          eval_every=8, eval_examples=0, log_every=2, precision=precision)
        train(model, tokenizer, batches, batches, splits["valid"], cfg)
        assert all(p.dtype == torch.float32 for p in model.parameters())
        losses[precision] = [r["loss"] for r in log_records(tmp_path / precision / "log.jsonl") if "loss" in r]
    assert losses["bf16"][-1] < losses["bf16"][0] - 0.2, losses
    assert losses["bf16"][0] != losses["fp32"][0], losses  # autocast was on
    for first_or_last in (0, -1):
        assert abs(losses["bf16"][first_or_last] - losses["fp32"][first_or_last]) < 0.05 * losses["fp32"][0], losses
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp16")
