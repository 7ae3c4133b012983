"""Datasets larger than memory: a JSONL file read through line offsets, tokenized batch by batch."""

import gc
import json
import os
import time
from pathlib import Path

import pytest

from minidq.data import Batches, DataError, Example, encode
from minidq.stream import JsonlExamples, LazyPairs
from minidq.tokenizer import Tokenizer

DATA = Path(__file__).resolve().parents[1] / "data_samples"
WORDS = "red green blue cat dog fish one two three north south east west big small old new".split()


def line(i: int) -> str:
    """Example i of the generated file: sources of 40 to 119 words (about 200 to 600 bytes)."""
    words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(40 + i % 80)]
    return json.dumps({"document": " ".join(words), "summary": " ".join(words[:5]), "id": i}) + "\n"


def rss() -> int:
    """This process's resident memory now (not its peak: earlier tests may have set that)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_pretrained(DATA / "summarization")


def test_a_200k_line_file_streams_in_flat_memory(tmp_path, tok):
    path = tmp_path / "train.jsonl"
    with open(path, "w") as f:
        for start in range(0, 200_000, 10_000):
            f.write("".join(line(i) for i in range(start, start + 10_000)))
    size = path.stat().st_size
    gc.collect()
    before, cpu = rss(), time.process_time()

    examples = JsonlExamples(path, "document", "summary")
    batches = Batches(LazyPairs(examples, tok, 128, 16), 32, tok.pad_token_id, seed=0, lengths=examples.lengths())
    first = next(batches.epoch(0))

    cpu, grown = time.process_time() - cpu, rss() - before
    # Read into memory (read_jsonl) the 86 MiB file takes 115 MiB; streamed, 19 MiB: 32 bytes a line
    # for the index, the rest for the epoch's batch order (benchmarks/stream_memory.py).
    assert grown < size / 2, f"memory grew by {grown / 2**20:.0f} MiB for a {size / 2**20:.0f} MiB file"
    # The first batch needs one pass over the file, not tokenizing it: seconds of CPU time (CPU
    # time, not wall time, so a busy machine does not fail it; the bound is generous).
    assert cpu < 60, f"{cpu:.1f} CPU seconds to the first batch"
    assert len(examples) == 200_000 and first["input_ids"].shape[0] == 32
    record = json.loads(line(123_456))
    assert examples[123_456] == Example(record["document"], record["summary"])
    # the lazily tokenized pair is what encode() makes of the same example
    assert LazyPairs(examples, tok, 128, 16)[7] == encode([examples[7]], tok, 128, 16).pairs[0]


GOOD = '{"source": "a b c", "target": "x y"}\n'


def test_bad_lines_are_reported_with_file_and_line_before_training(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(GOOD + "\n" + GOOD + '{"source": "a"}\n' + GOOD)
    with pytest.raises(DataError, match=rf"^{path}:4: missing field 'target'"):
        JsonlExamples(path)
    with pytest.warns(UserWarning, match=rf"skipped 1 bad line\(s\) in {path}; first: {path}:4"):
        examples = JsonlExamples(path, skip_bad=True)
    assert len(examples) == 3 and examples[2] == Example("a b c", "x y")
    assert examples[:2] == [Example("a b c", "x y")] * 2
    assert list(examples.lengths()) == [(5, 3)] * 3


def test_a_line_changed_after_indexing_names_its_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(GOOD * 3)
    examples = JsonlExamples(path)
    path.write_text(GOOD + GOOD + '{"source": 1, "target": "x y"}\n')
    with pytest.raises(DataError, match=rf"^{path}:3: field 'source' should be a string.*changed"):
        examples[2]
