"""Memory and time to the first batch: a large JSONL file streamed (minidq.stream) vs read into memory.

Writes a 200k-line file (the one tests/test_stream.py generates: 86 MiB), then measures how much
this process's resident memory grows, and the CPU seconds spent, up to the first batch of a
streamed run (`--stream`: index pass, batch order, one batch read and tokenized); then the growth
of reading the same file with read_jsonl (what a run without --stream does before tokenizing).

    python benchmarks/stream_memory.py [--lines 200000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from minidq.data import Batches, read_jsonl
from minidq.stream import JsonlExamples, LazyPairs
from minidq.tokenizer import Tokenizer

WORDS = "red green blue cat dog fish one two three north south east west big small old new".split()


def line(i: int) -> str:
    """Example i: sources of 40 to 119 words (as tests/test_stream.py)."""
    words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(40 + i % 80)]
    return json.dumps({"document": " ".join(words), "summary": " ".join(words[:5]), "id": i}) + "\n"


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    tok = Tokenizer.from_pretrained(ROOT / "data_samples" / "summarization")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.jsonl"
        with open(path, "w") as f:
            for start in range(0, args.lines, 10_000):
                f.write("".join(line(i) for i in range(start, min(start + 10_000, args.lines))))
        size = path.stat().st_size
        gc.collect()
        before, cpu = rss(), time.process_time()
        examples = JsonlExamples(path, "document", "summary")
        batches = Batches(LazyPairs(examples, tok, 128, 16), 32, tok.pad_token_id, seed=0,
                          lengths=examples.lengths())
        next(batches.epoch(0))
        print(f"{args.lines} lines, {size / 2**20:.0f} MiB; streamed: memory +{(rss() - before) / 2**20:.1f} MiB, "
              f"{time.process_time() - cpu:.1f} CPU s to the first batch")
        del examples, batches
        gc.collect()
        before = rss()
        in_memory = read_jsonl(path, "document", "summary")
        print(f"read_jsonl: memory +{(rss() - before) / 2**20:.1f} MiB for {len(in_memory)} examples")


if __name__ == "__main__":
    main()
