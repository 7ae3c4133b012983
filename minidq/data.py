"""From JSON Lines files to padded, length-grouped batches of token ids.

Three steps, one function each:
  read_jsonl    text pairs, with every bad line reported as `file:line: what is wrong`
  encode        token ids, truncated to a maximum length (and how many were cut, so it is noticed)
  Batches       padded tensors; examples of similar length share a batch, so little compute is
                spent on padding, and the order depends only on (seed, epoch) so that a training
                run can stop and resume at the exact same batch.

The decoder's input (the target shifted right) is not made here: the model makes it from
`labels` (minidq.model.shift_tokens_right), as Hugging Face's BART does.
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import torch

from .errors import MinidqError, MinidqWarning

IGNORE_INDEX = -100  # label value that cross-entropy skips: padding is not something to predict


class DataError(MinidqError, ValueError):
    """A problem in a data file, with `file:line:` in front of the message."""


@dataclass(frozen=True)
class Example:
    source: str
    target: str


def _parse_line(line: bytes, source_field: str, target_field: str) -> Example:
    """One JSONL line to an Example; raises ValueError saying what is wrong (without the location)."""
    try:
        record = json.loads(line.decode("utf-8").rstrip("\r\n"))  # so a column at the line end is right
    except UnicodeDecodeError as e:
        raise ValueError(f"not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"malformed JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    values = []
    for field in (source_field, target_field):
        if field not in record:
            raise ValueError(f"missing field {field!r} (fields: {', '.join(map(repr, record))})")
        value = record[field]
        if not isinstance(value, str):
            raise ValueError(f"field {field!r} should be a string, got {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"field {field!r} is empty")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:  # JSON's "\ud800" escape decodes to a half of a character
            raise ValueError(f"field {field!r} holds a lone surrogate ({value[e.start]!r} at character "
                             f"{e.start}), which is not text") from None
        values.append(value)
    return Example(*values)


def scan_jsonl(path: str | Path, source_field: str = "source", target_field: str = "target",
               skip_bad: bool = False) -> Iterator[tuple[int, int, Example]]:
    """(byte offset, line number, example) of each good line, one line in memory at a time.

    A bad line raises DataError("path:line: ..."); with skip_bad=True it is dropped instead and,
    at the end, a warning says how many were dropped and why the first one was. Blank lines are ignored."""
    bad, offset = [], 0
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                example = _parse_line(line, source_field, target_field)
            except ValueError as e:
                if not skip_bad:
                    raise DataError(f"{path}:{lineno}: {e}") from None
                bad.append(f"{path}:{lineno}: {e}")
                continue
            yield start, lineno, example
    if bad:
        warnings.warn(MinidqWarning(f"skipped {len(bad)} bad line(s) in {path}; first: {bad[0]}"), stacklevel=3)


def read_jsonl(path: str | Path, source_field: str = "source", target_field: str = "target",
               skip_bad: bool = False) -> list[Example]:
    """Read `{"source": ..., "target": ...}` lines (field names selectable, e.g. document/summary).

    A bad line raises DataError("path:line: ..."); with skip_bad=True it is dropped instead and
    a warning says how many were dropped and why the first one was. Blank lines are ignored.
    (A file too large for memory: minidq.stream.JsonlExamples reads it through line offsets.)
    """
    examples = [example for _, _, example in scan_jsonl(path, source_field, target_field, skip_bad)]
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples


def load_split(data_dir: str | Path, split: str, **kwargs) -> list[Example]:
    """`data_dir/{split}.jsonl`, e.g. load_split("data_samples/summarization", "train")."""
    return read_jsonl(Path(data_dir) / f"{split}.jsonl", **kwargs)


def read_facts(path: str | Path, n: int) -> tuple[list[list[str]], list[list[str]]] | None:
    """The `facts` / `distractors` fields of the first n examples (data_samples' summarization and
    QA have them, for minidq.metrics.content), or None if the lines lack them. Blank lines are
    skipped as read_jsonl skips them; a field that is not a list of strings is a DataError."""
    records = []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if len(records) == n:
                break
            if line.strip():
                record = json.loads(line)  # read_jsonl has read this line already: it is a JSON object
                for field in ("facts", "distractors"):
                    value = record.get(field, [])
                    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                        raise DataError(f"{path}:{lineno}: field {field!r} should be a list of strings, "
                                        f"got {json.dumps(value)[:60]}")
                records.append(record)
    if not records or not all("facts" in r for r in records):
        return None
    return [r["facts"] for r in records], [r.get("distractors", []) for r in records]


class TextEncoder(Protocol):
    """What encode() needs from a tokenizer (minidq.tokenizer.Tokenizer has it)."""

    def encode(self, text: str, max_length: int | None = None) -> list[int]: ...

    def encode_target(self, text: str, max_length: int | None = None) -> list[int]: ...


@dataclass(frozen=True)
class Pair:
    """One tokenized example: `<s> source </s>` and `<s> target </s>` ids."""

    input_ids: list[int]
    labels: list[int]


@dataclass(frozen=True)
class Encoded:
    pairs: list[Pair]
    sources_truncated: int  # how many sources were longer than max_source_length and got cut
    targets_truncated: int


def encode(examples: list[Example], tokenizer: TextEncoder, max_source_length: int,
           max_target_length: int) -> Encoded:
    """Tokenize every example, cutting to the maximum lengths (the tokenizer keeps `</s>` last).

    Truncation is counted because a silently cut target teaches the model to stop mid-sentence.
    """
    pairs, cut = [], {"source": 0, "target": 0}
    for ex in examples:
        ids = {}
        for side, text, limit, enc in (("source", ex.source, max_source_length, tokenizer.encode),
                                       ("target", ex.target, max_target_length, tokenizer.encode_target)):
            ids[side] = enc(text)
            if len(ids[side]) > limit:
                cut[side] += 1
                ids[side] = enc(text, max_length=limit)
        pairs.append(Pair(ids["source"], ids["target"]))
    return Encoded(pairs, cut["source"], cut["target"])


def make_batches(examples: list[Example], tokenizer: TextEncoder, max_source_length: int, max_target_length: int,
                 batch_size: int, pad_token_id: int, *, shuffle: bool, seed: int = 0, where: str = "") -> Batches:
    """A split's examples, tokenized, cut to the lengths and batched: the one path from examples to
    batches (the CLI, the demo and the student runs all take it). What is cut is counted, in one
    MinidqWarning naming `where` (e.g. "train")."""
    enc = encode(examples, tokenizer, max_source_length, max_target_length)
    if enc.sources_truncated or enc.targets_truncated:
        warnings.warn(MinidqWarning(f"{where or 'data'}: truncated {enc.sources_truncated} sources (to "
                                    f"{max_source_length} tokens) and {enc.targets_truncated} targets (to "
                                    f"{max_target_length}) of {len(examples)}"), stacklevel=2)
    return Batches(enc.pairs, batch_size, pad_token_id, shuffle=shuffle, seed=seed)


def collate(pairs: list[Pair], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of pairs into (B, T) LongTensors.

    input_ids       source ids, padded with pad_token_id
    attention_mask  1 on real tokens, 0 on padding (the encoder must not attend to padding)
    labels          target ids, padded with -100 so the loss ignores those positions
    """
    src_len = max(len(p.input_ids) for p in pairs)
    tgt_len = max(len(p.labels) for p in pairs)
    input_ids = torch.full((len(pairs), src_len), pad_token_id, dtype=torch.long)  # (B, S)
    attention_mask = torch.zeros((len(pairs), src_len), dtype=torch.long)  # (B, S)
    labels = torch.full((len(pairs), tgt_len), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    for row, p in enumerate(pairs):
        input_ids[row, : len(p.input_ids)] = torch.tensor(p.input_ids)
        attention_mask[row, : len(p.input_ids)] = 1
        labels[row, : len(p.labels)] = torch.tensor(p.labels)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def batch_order(lengths: Sequence[tuple[int, int]], batch_size: int, shuffle: bool, seed: int, epoch: int,
                pool_batches: int = 50) -> list[list[int]]:
    """Example indices of each batch of one epoch: a pure function of its arguments.

    shuffle=False keeps the file order (for evaluation, where outputs line up with references).
    shuffle=True shuffles, then sorts by length within pools of `pool_batches` batches and cuts
    batches from each pool, then shuffles the batches: similar lengths share a batch (little
    padding) while every epoch still sees a different mix.
    """
    indices = list(range(len(lengths)))
    if not shuffle:
        return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    rng = random.Random(seed * 1_000_003 + epoch)  # one stream per (seed, epoch)
    rng.shuffle(indices)
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(indices), pool):
        chunk = sorted(indices[start : start + pool], key=lambda i: lengths[i])  # stable sort
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class Batches:
    """Padded batches of a dataset, epoch after epoch, in a reproducible order.

    for batch in Batches(pairs, 32, tok.pad_token_id, seed=0).epoch(3, skip=120): ...
    resumes epoch 3 at its 121st batch, exactly where an interrupted run stopped.

    `pairs` may be any sequence, e.g. one that tokenizes an example only when it is asked for
    (minidq.stream); then give `lengths`, the sort keys, so that nothing is tokenized to order them.
    """

    def __init__(self, pairs: Sequence[Pair], batch_size: int, pad_token_id: int,
                 shuffle: bool = True, seed: int = 0, lengths: Sequence | None = None):
        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        self.pairs, self.batch_size, self.pad_token_id = pairs, batch_size, pad_token_id
        self.shuffle, self.seed = shuffle, seed
        # sort key: source length, then target length (the encoder's input is usually the longer)
        self.lengths = lengths if lengths is not None else [(len(p.input_ids), len(p.labels)) for p in pairs]

    def __len__(self) -> int:
        return -(-len(self.pairs) // self.batch_size)  # batches per epoch (ceil)

    def indices(self, epoch: int) -> list[list[int]]:
        return batch_order(self.lengths, self.batch_size, self.shuffle, self.seed, epoch)

    def epoch(self, epoch: int, skip: int = 0, rank: int = 0, world_size: int = 1) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of `epoch`, starting after the first `skip` of them.

        rank/world_size (multi-process training): this process's shard of each batch, every
        world_size-th example from the rank-th on; a batch is cut from length-sorted examples,
        so the shards get about the same number of tokens and no process waits for another."""
        for batch in self.indices(epoch)[skip:]:
            yield collate([self.pairs[i] for i in batch[rank::world_size]], self.pad_token_id)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self.epoch(0)
