"""minidq's generate vs transformers' generate: same weights, same inputs, same options, same tokens.

For each config (a tiny one, and a bart-base-shaped one with random weights) and each search
(greedy, beam-4), both implementations decode the same padded batch; runs are interleaved
(HF, minidq, HF, minidq, ...) in one process so that machine noise hits both alike, and the
script prints the median time of each and the median of the per-pair ratios minidq / HF.

    python benchmarks/generate_vs_hf.py                 # both configs, ~3 min on 1 CPU thread
    python benchmarks/generate_vs_hf.py --configs tiny --repeats 20

transformers is a benchmark-only dependency; it runs with its defaults (sdpa attention, KV cache).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial

import torch


from minidq import Bart

CONFIGS = {
    "tiny": dict(vocab_size=1000, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256, max_position_embeddings=128),
    "bart-base": dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                      decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
                      max_position_embeddings=1024),
}
SEARCHES = {"greedy": dict(num_beams=1), "beam-4": dict(num_beams=4, length_penalty=2.0, no_repeat_ngram_size=3)}


def make_models(shape: dict, directory: str):
    """A random transformers BART, saved and loaded into minidq: the very same weights."""
    import transformers

    torch.manual_seed(0)
    hf = transformers.BartForConditionalGeneration(transformers.BartConfig(**shape)).eval()
    hf.save_pretrained(directory)
    return hf, Bart.from_pretrained(directory)


def make_batch(vocab_size: int, batch: int, src_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch whose rows have different lengths (right-padded), as real batches do."""
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(4, vocab_size, (batch, src_len), generator=g)
    attention_mask = torch.ones_like(input_ids)
    for row in range(1, batch):
        pad = row * src_len // (2 * batch)
        input_ids[row, src_len - pad:] = 1
        attention_mask[row, src_len - pad:] = 0
    return input_ids, attention_mask


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each implementation")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--src-len", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=32, help="as in HF: counts the decoder start token")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 gives steadier timings)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers
    transformers.logging.set_verbosity_error()

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {args.threads} thread(s), "
          f"batch {args.batch}, source length {args.src_len}, max_length {args.max_length}, {args.repeats} repeats")
    print(f"{'config':<10} {'search':<7} {'HF (s)':>8} {'minidq (s)':>10} {'ratio':>6}  same tokens")
    for name in args.configs:
        with tempfile.TemporaryDirectory() as directory:
            hf, ours = make_models(CONFIGS[name], directory)
        input_ids, attention_mask = make_batch(CONFIGS[name]["vocab_size"], args.batch, args.src_len)
        for search, options in SEARCHES.items():
            # min_length blocks EOS until the last step: random weights would otherwise stop at once.
            options = dict(options, max_length=args.max_length, min_length=args.max_length - 1, early_stopping=False)
            run_hf = partial(hf.generate, input_ids, attention_mask=attention_mask, do_sample=False, **options)
            run_ours = partial(ours.generate, input_ids, attention_mask, **options)
            same = torch.equal(run_hf(), run_ours())  # also the warm-up run
            hf_times, our_times = [], []
            for _ in range(args.repeats):
                hf_times.append(seconds(run_hf))
                our_times.append(seconds(run_ours))
            ratio = statistics.median(o / h for o, h in zip(our_times, hf_times))
            print(f"{name:<10} {search:<7} {statistics.median(hf_times):>8.3f} {statistics.median(our_times):>10.3f} "
                  f"{ratio:>6.2f}  {same}", flush=True)


if __name__ == "__main__":
    main()
