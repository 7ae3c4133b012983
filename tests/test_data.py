"""minidq.data: clear errors on bad files, correct padding and masking, reproducible batch order;
and data_samples/make_toy_data.py reproduces the committed files byte for byte."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minidq.data import (DataError, Batches, Example, Pair, collate, encode, load_split,
                         read_jsonl)
from minidq.model import shift_tokens_right, shift_tokens_right_mbart
from minidq.tokenizer import Tokenizer

DATA = Path(__file__).resolve().parents[1] / "data_samples"
GOOD = '{"source": "a b c", "target": "x y"}\n'


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# ------------------------------------------------------------------ reading


@pytest.mark.parametrize("bad_line, message", [
    ('{"source": "a", "target": ', "malformed JSON"),
    ('["a", "b"]', "expected a JSON object, got list"),
    ('{"source": "a"}', "missing field 'target'"),
    ('{"src": "a", "target": "b"}', "missing field 'source'"),
    ('{"source": 3, "target": "b"}', "field 'source' should be a string, got int"),
    ('{"source": "a", "target": null}', "field 'target' should be a string, got NoneType"),
    ('{"source": "a", "target": ""}', "field 'target' is empty"),
    ('{"source": "  \\n ", "target": "b"}', "field 'source' is empty"),
])
def test_bad_line_is_reported_with_file_and_line(tmp_path, bad_line, message):
    path = write(tmp_path, GOOD + GOOD + bad_line + "\n" + GOOD)
    with pytest.raises(DataError, match=rf"^{path}:3: {message}"):
        read_jsonl(path)


def test_invalid_utf8_is_reported(tmp_path):
    path = write(tmp_path, GOOD.encode() + b'{"source": "\xff", "target": "x"}\n')
    with pytest.raises(DataError, match=rf"^{path}:2: not valid UTF-8"):
        read_jsonl(path)


def test_skip_bad_drops_lines_and_says_how_many(tmp_path):
    path = write(tmp_path, GOOD + "not json\n" + '{"source": "a"}\n' + GOOD)
    with pytest.warns(UserWarning, match=rf"skipped 2 bad line\(s\) in {path}; first: {path}:2: malformed"):
        examples = read_jsonl(path, skip_bad=True)
    assert examples == [Example("a b c", "x y")] * 2


def test_field_names_blank_lines_and_unicode(tmp_path):
    text = '{"document": "Zürich — 東京", "summary": "café", "id": 7}\n\n{"summary": "b", "document": "a"}\n'
    assert read_jsonl(write(tmp_path, text), source_field="document", target_field="summary") == [
        Example("Zürich — 東京", "café"), Example("a", "b")]


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no examples"):
        read_jsonl(write(tmp_path, "\n"))


def test_load_split_reads_the_samples():
    examples = load_split(DATA / "translation", "valid")
    assert len(examples) == 500 and all(isinstance(e, Example) for e in examples)


# ------------------------------------------------------------------ tokenizing and batching


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_pretrained(DATA / "translation")


def test_encode_truncates_and_counts(tok):
    examples = [Example("I see the dog.", "Văd câinele."),
                Example("The big dogs will not see our small cats tomorrow.", "Mâine câinii mari nu vor vedea pisicile noastre mici.")]
    full = encode(examples, tok, max_source_length=1000, max_target_length=1000)
    assert (full.sources_truncated, full.targets_truncated) == (0, 0)
    assert full.pairs[0].input_ids == tok.encode("I see the dog.")
    fits = len(full.pairs[0].input_ids)  # the first source just fits, the second is cut
    short = encode(examples, tok, max_source_length=fits, max_target_length=len(full.pairs[1].labels) - 1)
    assert (short.sources_truncated, short.targets_truncated) == (1, 1)
    # the translation tokenizer is mBART's: a cut source still ends `</s> en_XX`, a target `</s> ro_RO`
    assert short.pairs[1].input_ids == full.pairs[1].input_ids[: fits - 2] + full.pairs[1].input_ids[-2:]
    assert short.pairs[1].input_ids[-2:] == [tok.eos_token_id, tok.token_id("en_XX")]
    assert short.pairs[1].labels[-2:] == [tok.eos_token_id, tok.token_id("ro_RO")]
    assert short.pairs[0] == full.pairs[0]


def test_collate_pads_masks_and_ignores_padding_in_labels():
    batch = collate([Pair([0, 5, 6, 2], [0, 7, 2]), Pair([0, 5, 2], [0, 7, 8, 9, 2])], pad_token_id=1)
    assert batch["input_ids"].tolist() == [[0, 5, 6, 2], [0, 5, 2, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["labels"].tolist() == [[0, 7, 2, -100, -100], [0, 7, 8, 9, 2]]
    assert all(t.dtype == torch.long for t in batch.values())


def test_labels_and_models_shift_right_give_teacher_forcing_inputs():
    batch = collate([Pair([0, 5, 2], [0, 7, 2]), Pair([0, 5, 2], [0, 7, 8, 9, 2])], pad_token_id=1)
    # BART: the decoder starts from </s> (decoder_start_token_id=2) and sees labels[:-1]
    decoder_inputs = shift_tokens_right(batch["labels"], pad_token_id=1, decoder_start_token_id=2)
    assert decoder_inputs.tolist() == [[2, 0, 7, 2, 1], [2, 0, 7, 8, 9]]
    # so the token fed at step t+1 is the label of step t, wherever the label is real
    real = batch["labels"][:, :-1] != -100
    assert torch.equal(decoder_inputs[:, 1:][real], batch["labels"][:, :-1][real])
    # mBART: the last real token (the language code in mBART targets) wraps round to the front
    mbart = collate([Pair([0, 2], [7, 8, 2, 250]), Pair([0, 2], [7, 2, 250])], pad_token_id=1)
    assert shift_tokens_right_mbart(mbart["labels"], pad_token_id=1).tolist() == [
        [250, 7, 8, 2], [250, 7, 2, 250]]


def toy_pairs(n: int = 203, seed: int = 0) -> list[Pair]:
    """Sources of 3..80 tokens, targets about a third as long, like summaries."""
    g = torch.Generator().manual_seed(seed)
    sources = torch.randint(3, 80, (n,), generator=g).tolist()
    targets = [max(3, s // 3 + d) for s, d in zip(sources, torch.randint(-2, 3, (n,), generator=g).tolist())]
    return [Pair([0] + [5] * (s - 2) + [2], [0] + [6] * (t - 2) + [2]) for s, t in zip(sources, targets)]


def test_every_example_once_per_epoch_and_order_is_a_function_of_seed_and_epoch():
    pairs = toy_pairs()
    batches = Batches(pairs, batch_size=8, pad_token_id=1, seed=3)
    assert len(batches) == 26 == len(batches.indices(0))
    for epoch in range(3):
        assert sorted(i for b in batches.indices(epoch) for i in b) == list(range(len(pairs)))
    again = Batches(pairs, batch_size=8, pad_token_id=1, seed=3)
    assert again.indices(1) == batches.indices(1)
    assert batches.indices(0) != batches.indices(1)
    assert Batches(pairs, 8, 1, seed=4).indices(1) != batches.indices(1)


def test_resume_by_skipping_batches_gives_exactly_the_rest_of_the_epoch():
    batches = Batches(toy_pairs(), batch_size=8, pad_token_id=1, seed=0)
    full = list(batches.epoch(2))
    resumed = list(batches.epoch(2, skip=11))
    assert len(resumed) == len(full) - 11
    for a, b in zip(full[11:], resumed):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_length_grouping_keeps_padding_small():
    pairs = toy_pairs(n=1000)

    def padding(batches: Batches) -> int:
        return sum(int((b["attention_mask"] == 0).sum() + (b["labels"] == -100).sum())
                   for b in batches.epoch(0))

    grouped = padding(Batches(pairs, 16, pad_token_id=1, seed=0))
    ungrouped = padding(Batches(pairs, 16, pad_token_id=1, shuffle=False))
    assert grouped < ungrouped / 5


def test_no_shuffle_keeps_file_order():
    batches = Batches(toy_pairs(n=10), batch_size=4, pad_token_id=1, shuffle=False)
    assert batches.indices(5) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


# ------------------------------------------------------------------ the generator


def test_generator_reproduces_the_committed_files(tmp_path):
    """Run twice (once without, once with tokenizer training): identical bytes, equal to data_samples/."""
    script = DATA / "make_toy_data.py"
    for name, extra in (("a", ["--skip-tokenizer"]), ("b", [])):
        subprocess.run([sys.executable, str(script), "--out", str(tmp_path / name), *extra],
                       check=True, capture_output=True)
    for task in ("summarization", "qa", "translation"):
        for split in ("train", "valid", "test"):
            made = (tmp_path / "a" / task / f"{split}.jsonl").read_bytes()
            assert made == (tmp_path / "b" / task / f"{split}.jsonl").read_bytes()
            assert made == (DATA / task / f"{split}.jsonl").read_bytes(), f"{task}/{split} differs"
        for file in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
            assert (tmp_path / "b" / task / file).read_bytes() == (DATA / task / file).read_bytes()


@pytest.mark.parametrize("task", ["summarization", "qa"])
def test_targets_state_their_facts_in_many_ways(task):
    """Every reference states all its facts and none of its distractors (which its source does
    mention), and the references are one-to-many: many phrasings and orders of the same facts."""
    from minidq.metrics import mentions

    MONTHS = {"January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"}

    records = [json.loads(line) for line in (DATA / task / "valid.jsonl").read_text(encoding="utf-8").splitlines()]
    for r in records:
        assert all(mentions(r["target"], f) for f in r["facts"]), r
        assert not any(mentions(r["target"], d) for d in r["distractors"]), r
        # every distractor is in the source (a date in some written form: "24 March", "March 24", ...;
        # a comparison's wrong direction, "down from 120", is a claim the source never makes)
        assert all(mentions(r["source"], d) for d in r["distractors"]
                   if d.split()[0] not in MONTHS and not d.startswith(COMPARED)), r
    openings = {" ".join(r["target"].split()[:2]) for r in records}
    assert len(openings) > 100  # not one template: the first words vary with phrasing and names
    assert sum(len(r["distractors"]) for r in records) > 2 * len(records)


COMPARED = ("up from ", "down from ")


def test_summaries_compare_the_plan_with_the_year_before():
    """About half the summaries say whether the plan is up or down on the company's figure of a
    year before. The source gives both numbers and never the direction: the model must compare."""
    def number(text: str) -> int:  # "5,834" or "$120 million"
        return int(text.strip("$").split()[0].replace(",", ""))

    records = [json.loads(line) for line in (DATA / "summarization" / "valid.jsonl").read_text(encoding="utf-8").splitlines()]
    compared = [r for r in records if r["facts"][-1].startswith(COMPARED)]
    assert len(records) / 3 < len(compared) < 2 * len(records) / 3
    directions = []
    for r in compared:
        direction, before = r["facts"][-1].split(" from ")
        assert before in r["source"] and not any(c in r["source"] for c in COMPARED), r
        assert (number(r["facts"][2]) > number(before)) == (direction == "up"), r  # facts[2]: the plan's figure
        directions.append(direction)
    assert len(records) / 10 < directions.count("up") < len(compared) - len(records) / 10


def test_translation_references_are_one_to_many():
    """The same English structure has more than one right Romanian form, drawn at random: a
    subject pronoun kept or dropped, and the future as "va vedea" or "o să vadă"."""
    pairs = [json.loads(line) for line in (DATA / "translation" / "valid.jsonl").read_text(encoding="utf-8").splitlines()]
    he = [p["target"].split()[0] for p in pairs if p["source"].startswith("He ")]
    assert "El" in he and sum(w != "El" for w in he) > len(he) / 4, he
    future = [p["target"].lower() for p in pairs if " will " in p["source"] and "," not in p["source"]]
    spoken = sum("o să" in t for t in future)
    assert len(future) / 4 < spoken < 3 * len(future) / 4
    assert all(any(aux in t.split() for aux in ("voi", "va", "vom", "vor")) for t in future if "o să" not in t)


def test_make_batches_counts_what_it_cuts():
    from minidq import Tokenizer
    from minidq.data import Example, make_batches
    from minidq.errors import MinidqWarning
    tok = Tokenizer.from_pretrained(Path(__file__).resolve().parent.parent / "data_samples" / "summarization")
    examples = [Example("a short source", "a target"), Example(" ".join(["word"] * 40), "another target")]
    with pytest.warns(MinidqWarning, match="valid: truncated 1 sources \\(to 16 tokens\\) and 0 targets"):
        batches = make_batches(examples, tok, 16, 32, 2, tok.pad_token_id, shuffle=False, where="valid")
    assert [len(p.input_ids) for p in batches.pairs] == [len(tok.encode("a short source")), 16]
