"""minidq vs transformers: time of one training step (forward + backward + AdamW step).

Same weights (a transformers model saved and loaded into minidq), same batches, same dropout
(both in train() mode), the same AdamW. Three implementations are timed, interleaved round after
round in one process so that machine noise hits all of them alike (one warm-up step each first):

    minidq        minidq.Bart (explicit attention: scores -> softmax -> weighted sum)
    hf-default    BartForConditionalGeneration with its default attention (sdpa on CPU)
    hf-eager      the same model switched to attn_implementation="eager" (explicit attention, like ours)

Two shapes: the shipped teacher (its own weights; batch 32, source 128, target 32 tokens) and a
bart-base-shaped model (6-6 layers, d_model 768, vocab 50265, random weights; batch 8, source 256,
target 64). It prints each one's median and fastest step time, the median of the per-round
ratios minidq / HF, and the ratio of the fastest times (the steadiest figure on a shared
machine); before timing, it checks that both compute the same loss with dropout off.

    python benchmarks/train_step_vs_hf.py                    # both shapes, ~4 min on 1 CPU thread
    python benchmarks/train_step_vs_hf.py --configs teacher --repeats 10
    python benchmarks/train_step_vs_hf.py --profile          # where minidq's step spends its time

transformers is a benchmark-only dependency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from minidq import Bart

TEACHER = ROOT / "data_samples" / "summarization" / "teacher"
BART_BASE = dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                 decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
                 max_position_embeddings=1024)
SHAPES = {  # name -> (where the weights come from, batch, source length, target length, default repeats)
    "teacher": (TEACHER, 32, 128, 32, 7),
    "bart-base": (BART_BASE, 8, 256, 64, 3),
}


def make_models(source, directory: str):
    """(transformers model, minidq model) with the very same weights."""
    import transformers

    if isinstance(source, Path):
        hf = transformers.BartForConditionalGeneration.from_pretrained(source)
        return hf, Bart.from_pretrained(source)
    torch.manual_seed(0)
    hf = transformers.BartForConditionalGeneration(transformers.BartConfig(**source))
    hf.save_pretrained(directory)
    return hf, Bart.from_pretrained(directory)


def make_batch(vocab_size: int, batch: int, src_len: int, tgt_len: int) -> dict[str, torch.Tensor]:
    """Right-padded sources and -100-padded labels of varied lengths, as a length-grouped batch has."""
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(4, vocab_size, (batch, src_len), generator=g)
    attention_mask = torch.ones_like(input_ids)
    labels = torch.randint(4, vocab_size, (batch, tgt_len), generator=g)
    for row in range(1, batch):
        src_pad, tgt_pad = row * src_len // (8 * batch), row * tgt_len // (4 * batch)
        if src_pad:
            input_ids[row, src_len - src_pad:] = 1
            attention_mask[row, src_len - src_pad:] = 0
        if tgt_pad:
            labels[row, tgt_len - tgt_pad:] = -100
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def step_fn(model, optimizer, batch, before=None):
    """One training step; `before()` runs first (switching HF's attention implementation)."""
    def step() -> float:
        if before is not None:
            before()
        start = time.perf_counter()
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     labels=batch["labels"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start
    return step


def check_same_loss(hf, ours, batch) -> float:
    """With dropout off, both compute the same loss on the same batch (the benchmark is fair)."""
    hf.eval(), ours.eval()
    with torch.no_grad():
        a = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        b = ours(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
    hf.train(), ours.train()
    return abs(a.item() - b.item())


def profile_minidq(ours, batch) -> None:
    from torch.profiler import ProfilerActivity, profile

    optimizer = torch.optim.AdamW(ours.parameters(), lr=1e-5)
    step = step_fn(ours, optimizer, batch)
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--repeats", type=int, help="timed rounds per shape (default: 7 teacher, 3 bart-base)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 gives steadier timings on a shared machine)")
    parser.add_argument("--profile", action="store_true", help="profile one minidq step per shape instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {args.threads} thread(s)")
    for name in args.configs:
        source, batch_size, src_len, tgt_len, repeats = SHAPES[name]
        with tempfile.TemporaryDirectory() as directory:
            hf, ours = make_models(source, directory)
        batch = make_batch(ours.config.vocab_size, batch_size, src_len, tgt_len)
        if args.profile:
            print(f"\n{name}: batch {batch_size}, source {src_len}, target {tgt_len}")
            profile_minidq(ours.train(), batch)
            continue
        default_attn = hf.config._attn_implementation
        diff = check_same_loss(hf, ours, batch)

        # One HF model, its attention switched before each step: same weights, half the memory.
        hf_optimizer = torch.optim.AdamW(hf.parameters(), lr=1e-5)
        our_optimizer = torch.optim.AdamW(ours.parameters(), lr=1e-5)
        steps = {
            "minidq": step_fn(ours, our_optimizer, batch),
            f"hf-{default_attn}": step_fn(hf, hf_optimizer, batch, lambda: hf.set_attn_implementation(default_attn)),
            "hf-eager": step_fn(hf, hf_optimizer, batch, lambda: hf.set_attn_implementation("eager")),
        }
        for step in steps.values():  # warm-up: allocator, AdamW state, first-call overheads
            step()
        times: dict[str, list[float]] = {k: [] for k in steps}
        for _ in range(args.repeats or repeats):
            for k, step in steps.items():
                times[k].append(step())

        print(f"\n{name}: {ours.num_parameters() / 1e6:.1f} M parameters, batch {batch_size}, source {src_len}, "
              f"target {tgt_len}; {len(times['minidq'])} rounds; |loss minidq - loss HF| = {diff:.1e} (dropout off)")
        print(f"{'implementation':<14} {'median (s)':>10} {'fastest (s)':>11} {'minidq/it (median ratio)':>25} "
              f"{'minidq/it (fastest)':>20}")
        for k, t in times.items():
            ratio = statistics.median(o / h for o, h in zip(times["minidq"], t))
            print(f"{k:<14} {statistics.median(t):>10.3f} {min(t):>11.3f} {ratio:>25.2f} "
                  f"{min(times['minidq']) / min(t):>20.2f}", flush=True)
        print(json.dumps({"config": name, **{k: [round(x, 4) for x in t] for k, t in times.items()}}))
        del hf, ours, hf_optimizer, our_optimizer, steps


if __name__ == "__main__":
    main()
