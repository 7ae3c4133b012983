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

from minidq import Bart, BartConfig, Tokenizer
from minidq.data import Batches, Example, encode
from minidq.train import TrainConfig, TrainingError, load_checkpoint, train

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


def run(toy_data, out_dir, steps=12, seed=0, **overrides):
    root, tokenizer, splits, config = toy_data
    torch.manual_seed(seed)
    model = Bart(config)
    batches = {s: Batches(encode(ex, tokenizer, 32, 16).pairs, 16, tokenizer.pad_token_id,
                          shuffle=s == "train", seed=seed) for s, ex in splits.items()}
    cfg = TrainConfig(out_dir=str(out_dir), max_steps=steps, batch_size=16, lr=3e-3, warmup_steps=2,
                      eval_every=6, eval_examples=0, log_every=2, seed=seed, **overrides)
    figures = train(model, tokenizer, batches["train"], batches["valid"], splits["valid"], cfg)
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
