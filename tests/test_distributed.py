"""Multi-process training (torchrun, gloo on the CPU) computes what one process computes.

A DQ-BART distillation run of a quantized student in 2 processes, each taking half of every
global batch, ends with the weights (and the logged losses) of the same run in 1 process. Both
read the data with --stream (line offsets, batch-by-batch tokenization).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from minidq import Bart, BartConfig, Tokenizer
from minidq.runs import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
WORDS = "red green blue cat dog fish one two three north south east west big small old new".split()


def varied_examples(n: int, seed: int) -> list[dict]:
    """Sources of 3 to 14 words, targets their first 1 to 3 words: the two halves of a batch then
    hold different numbers of tokens, which is what a per-rank mean would get wrong."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(3, 15, (1,), generator=g))
        words = [WORDS[i] for i in torch.randint(len(WORDS), (length,), generator=g)]
        out.append({"source": " ".join(words), "target": " ".join(words[: 1 + length % 3])})
    return out


@pytest.fixture(scope="module")
def distill_setup(tmp_path_factory):
    """A data folder and a tiny random teacher (HF folder with its tokenizer), dropout off."""
    root = tmp_path_factory.mktemp("ddp")
    splits = {"train": varied_examples(64, 0), "valid": varied_examples(8, 1)}
    for split, examples in splits.items():
        (root / f"{split}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples))
    tokenizer = Tokenizer.train([e["source"] for e in splits["train"]], vocab_size=300)
    # dropout off: the 2 processes draw their masks from other generators than the 1 process
    config = BartConfig(vocab_size=tokenizer.vocab_size, d_model=32, encoder_layers=2, decoder_layers=2,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, max_position_embeddings=64, dropout=0.0)
    torch.manual_seed(0)
    Bart(config).save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    return root


def distill_args(root: Path, out: Path) -> list[str]:
    # act_scale="token": DQ-BART's default, one activation scale per tensor, would take each rank's
    # scale from its half of the batch, not from the whole batch, so 2 processes would compute
    # (slightly) another function than 1. Per-token scales depend on the token alone: the same
    # numbers whichever process holds the token, and in any batch.
    # The learning rate is low because the runs differ in the last bits of their gradients (sums
    # taken in another order), and Adam's normalised step turns that into weight differences that
    # grow with lr (the most where a gradient is near 0; and a weight or activation that rounds to
    # another code makes it larger): at 3e-3 they reached 1.1e-5 after 4 steps, at 1e-3 3.4e-6.
    return ["distill", "--teacher", str(root / "teacher"), "--data", str(root), "--out", str(out),
            "--layers", "2-1", "--quant", "2-2-8", "--act-scale", "token", "--max-steps", "4",
            "--grad-accum", "2", "--batch-size", "8", "--lr", "1e-3", "--warmup-steps", "1", "--eval-every", "2",
            "--eval-examples", "0", "--max-source-length", "32", "--max-target-length", "16", "--stream"]


def test_two_processes_end_with_the_weights_of_one(distill_setup, tmp_path):
    root = distill_setup
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, "-m", "minidq", *distill_args(root, one)], check=True, env=env,
                   capture_output=True, timeout=600)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "minidq", *distill_args(root, two)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    a, b = load_checkpoint(one / "last.ckpt"), load_checkpoint(two / "last.ckpt")
    assert a["step"] == b["step"] == 4
    assert len(b["other_ranks_rng"]) == 1  # rank 1's generators, for an exact resume
    start = Bart.from_pretrained(root / "teacher").state_dict()
    assert not torch.equal(a["model"]["encoder.layers.0.fc1.weight"], start["encoder.layers.0.fc1.weight"])
    for name, weight in a["model"].items():
        assert torch.allclose(weight, b["model"][name], rtol=0, atol=1e-5), \
            f"{name}: max diff {(weight - b['model'][name]).abs().max():.2e}"
    for key in ("exp_avg", "exp_avg_sq"):  # the optimizer saw the same gradients
        for i, state in a["optimizer"]["state"].items():
            assert torch.allclose(state[key], b["optimizer"]["state"][i][key], rtol=1e-4, atol=1e-7), (key, i)

    # rank 0 alone logged, the global batch's figures; rank 0 alone exported
    logs = [[json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()] for out in (one, two)]
    assert [r["step"] for r in logs[0]] == [r["step"] for r in logs[1]]
    for x, y in zip(*logs):
        for k in ("loss", "ce", "logits", "hidden", "attention", "val_loss"):
            if k in x:
                assert abs(x[k] - y[k]) < 1e-5 * max(1.0, abs(x[k])), (k, x, y)
    assert (two / "student.packed").is_file()
    assert result.stdout.count('"packed"') == 1  # one summary line, from rank 0


def test_last_ckpt_keeps_each_ranks_random_state(tmp_path, monkeypatch):
    """Rank 0 writes last.ckpt with every rank's generators; on resume, rank 1 gets its own back
    (its dropout masks then continue as in an uninterrupted run)."""
    import minidq.distributed as distributed
    from minidq.runs import restore, rng_state, save_checkpoint
    from minidq.train import TrainConfig, make_optimizer

    model = Bart(BartConfig(vocab_size=20, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                            decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16,
                            max_position_embeddings=16))
    optimizer = make_optimizer(model, TrainConfig())
    torch.manual_seed(1)
    rank1 = rng_state()
    torch.manual_seed(0)
    monkeypatch.setattr(distributed, "gather", lambda state: [state, rank1])  # as 2 processes hand them over
    save_checkpoint(tmp_path / "last.ckpt", model, optimizer, {"step": 3})
    ckpt = load_checkpoint(tmp_path / "last.ckpt")
    assert torch.equal(ckpt["torch_rng"], torch.get_rng_state())
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    restore(ckpt, model, optimizer)
    assert torch.equal(torch.get_rng_state(), rank1["torch_rng"])
    assert not torch.equal(torch.get_rng_state(), ckpt["torch_rng"])


def test_two_processes_killed_and_resumed_end_as_if_never_stopped(distill_setup, tmp_path):
    """Exact resume at the same world size: a 2-process run killed mid-training and resumed from
    last.ckpt ends with the weights of an uninterrupted 2-process run. Dropout is on, so each
    rank's generator must come back as it was (rank 1's from `other_ranks_rng`)."""
    root = distill_setup
    teacher = tmp_path / "teacher"
    model = Bart.from_pretrained(root / "teacher")
    model.config.dropout = 0.1
    Bart(model.config).save_pretrained(teacher)
    Tokenizer.from_pretrained(root / "teacher").save_pretrained(teacher)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def command(out: Path, *extra: str) -> list[str]:
        args = distill_args(root, out)
        args[args.index("--teacher") + 1] = str(teacher)
        args[args.index("--max-steps") + 1] = "30"
        args[args.index("--eval-every") + 1] = "5"
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "minidq", *args, *extra]

    subprocess.run(command(tmp_path / "straight"), check=True, env=env, capture_output=True, timeout=600)
    proc = subprocess.Popen(command(tmp_path / "killed"), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / "last.ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if ckpt.is_file() and load_checkpoint(ckpt)["step"] >= 10:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers
    proc.wait()
    killed_at = load_checkpoint(ckpt)["step"]
    assert 0 < killed_at < 30, "the run should have been interrupted mid-training"

    subprocess.run(command(tmp_path / "killed", "--resume"), check=True, env=env, capture_output=True, timeout=600)
    a = load_checkpoint(tmp_path / "straight" / "last.ckpt")["model"]
    b = load_checkpoint(ckpt)["model"]
    assert load_checkpoint(ckpt)["step"] == 30
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name}: max diff {(a[name] - b[name]).abs().max():.2e}"
