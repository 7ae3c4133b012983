"""Datasets larger than memory: a JSONL file read through line offsets, tokenized batch by batch.

CNN/DailyMail's training split is 287k articles, about 1.2 GB of JSON; read into Python strings
and tokenized up front it takes several times that in memory, and minutes before the first step.
Here one pass over the file checks every line (the same `file:line: ...` errors as
minidq.data.read_jsonl, so a bad line stops the run before training, not hours into it) and
keeps, per example, four integers: where its line starts, its line number, and the lengths of its
two texts. Batches then reads and tokenizes only the examples of the batch at hand.

The batches are grouped by the texts' lengths in characters, a stand-in for their lengths in
tokens (which would need the whole file tokenized first); so a streamed run sees its examples in
another order than the same run without streaming.
"""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Sequence, overload

from .data import DataError, Example, Pair, TextEncoder, _parse_line, encode, scan_jsonl


class JsonlExamples(Sequence[Example]):
    """The examples of a JSONL file, each read from disk when it is asked for.

    examples = JsonlExamples("cnndm/train.jsonl", "article", "highlights"); examples[123_456]
    """

    def __init__(self, path: str | Path, source_field: str = "source", target_field: str = "target",
                 skip_bad: bool = False):
        self.path, self.fields = Path(path), (source_field, target_field)
        # typed arrays: 8 bytes an integer, not a Python object each
        self.offsets, self.line_numbers = array("q"), array("q")
        self.source_chars, self.target_chars = array("q"), array("q")
        for offset, lineno, example in scan_jsonl(path, source_field, target_field, skip_bad):
            self.offsets.append(offset)
            self.line_numbers.append(lineno)
            self.source_chars.append(len(example.source))
            self.target_chars.append(len(example.target))
        if not self.offsets:
            raise DataError(f"{path}: no examples")

    def __len__(self) -> int:
        return len(self.offsets)

    @overload
    def __getitem__(self, i: int) -> Example: ...

    @overload
    def __getitem__(self, i: slice) -> list[Example]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        with open(self.path, "rb") as f:
            f.seek(self.offsets[i])
            line = f.readline()
        try:
            return _parse_line(line, *self.fields)
        except ValueError as e:  # it was good when indexed: the file changed underneath
            raise DataError(f"{self.path}:{self.line_numbers[i]}: {e} (the file changed after it was read)") from None

    def lengths(self) -> Sequence[tuple[int, int]]:
        """(source, target) lengths in characters: the sort keys for Batches(lengths=...)."""
        return CharLengths(self.source_chars, self.target_chars)


class CharLengths(Sequence[tuple[int, int]]):
    """(source_chars[i], target_chars[i]), made on access instead of held as a list of tuples."""

    def __init__(self, source_chars: array, target_chars: array):
        self.source_chars, self.target_chars = source_chars, target_chars

    def __len__(self) -> int:
        return len(self.source_chars)

    def __getitem__(self, i: int) -> tuple[int, int]:
        return self.source_chars[i], self.target_chars[i]


class LazyPairs(Sequence[Pair]):
    """Examples tokenized (and truncated, as minidq.data.encode does) when asked for; nothing is kept."""

    def __init__(self, examples: Sequence[Example], tokenizer: TextEncoder, max_source_length: int,
                 max_target_length: int):
        self.examples, self.tokenizer = examples, tokenizer
        self.max_source_length, self.max_target_length = max_source_length, max_target_length

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> Pair:
        return encode([self.examples[i]], self.tokenizer, self.max_source_length, self.max_target_length).pairs[0]
