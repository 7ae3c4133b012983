"""Tokenizer: trained here, it must give the same ids as transformers' BART tokenizer on our files."""

import json

import pytest
import torch

from minidq.tokenizer import Tokenizer, TokenizerError

transformers = pytest.importorskip("transformers")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A tokenizer splits text into pieces that a model can embed.",
    "Byte-level BPE never needs an unknown token, because every byte is in the vocabulary.",
    "Zürich — café 東京 🙂",
    "Distillation copies layers from a teacher; quantization stores weights in two bits.",
    "Numbers like 3.14159, 2022 and 50264 are split into digits and pieces.",
    "  Leading spaces, tabs\tand\nnewlines are bytes too.",
    "Привет, мир! Γειά σου κόσμε. مرحبا بالعالم",
] * 5

SENTENCES = [
    "The quick brown fox.",
    "Zürich — café 東京 🙂",
    "unseen words: xylophone quokka zyzzyva",
    "Mixed: naïve façade, 漢字かな交じり文, emoji 🚀🔥 and ASCII.",
    " leading space and trailing space ",
    "a <mask> in the middle, and </s> or <s> written as text",
    "",
    "multi\nline\ttext",
]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train(CORPUS, vocab_size=400)


@pytest.fixture(scope="module")
def saved(tok, tmp_path_factory):
    path = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(path)
    return path


def test_special_ids_like_bart(tok):
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.mask_token_id == tok.vocab_size - 1 == len(tok) - 1
    assert tok.vocab_size <= 400
    assert tok.convert_ids_to_tokens(range(4)) + tok.convert_ids_to_tokens([tok.mask_token_id]) == [
        "<s>", "<pad>", "</s>", "<unk>", "<mask>"]


@pytest.mark.parametrize("cls_name", ["AutoTokenizer", "BartTokenizer", "BartTokenizerFast"])
def test_ids_equal_transformers(tok, saved, cls_name):
    hf = getattr(transformers, cls_name).from_pretrained(saved)
    assert (hf.bos_token_id, hf.pad_token_id, hf.eos_token_id, hf.unk_token_id, hf.mask_token_id) == (
        0, 1, 2, 3, tok.mask_token_id)
    assert len(hf) == tok.vocab_size
    for s in SENTENCES + CORPUS[:8]:
        ids = tok.encode(s)
        assert ids == hf(s)["input_ids"], s
        assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
        assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=True)
        assert tok.decode(ids, skip_special_tokens=False) == hf.decode(ids)


def test_batch_padding_and_truncation_equal_transformers(tok, saved):
    hf = transformers.AutoTokenizer.from_pretrained(saved)
    ours = tok(SENTENCES)
    theirs = hf(SENTENCES, padding=True, return_tensors="pt")
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])
    assert ours["input_ids"].dtype == torch.long and ours["attention_mask"].dtype == torch.long

    ours = tok(SENTENCES, max_length=6)
    theirs = hf(SENTENCES, max_length=6, truncation=True, padding=True, return_tensors="pt")
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])
    assert tok.encode(SENTENCES[3], max_length=6) == theirs["input_ids"][3].tolist()

    theirs = hf(SENTENCES[:2], max_length=12, truncation=True, padding="max_length")
    assert tok(SENTENCES[:2], max_length=12, padding="max_length", return_tensors=None) == dict(theirs)

    single = tok("The quick brown fox.")
    assert single["input_ids"].shape == (1, len(tok.encode("The quick brown fox.")))


def test_unicode_round_trip(tok):
    for s in SENTENCES + ["Zürich — café 東京 🙂", "ünïcödé ☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u200b end"]:
        if "<" in s:
            continue  # written special tokens are specials, as in BART
        assert tok.decode(tok.encode(s)) == s
    batch = tok(SENTENCES[:4])["input_ids"]
    assert tok.batch_decode(batch) == SENTENCES[:4]  # padding is skipped
    assert tok.batch_decode(batch.tolist()) == SENTENCES[:4]
    assert tok.unk_token_id not in tok.encode("never seen: ☃ 𝔘 ᚠᛇᚻ")


def test_load_from_vocab_and_merges_only(tok, saved, tmp_path):
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((saved / name).read_bytes())
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    assert vocab["<mask>"] == tok.mask_token_id  # like BART's vocab.json, <mask> is in it
    loaded = Tokenizer.from_pretrained(tmp_path)
    assert loaded.vocab_size == tok.vocab_size
    for s in SENTENCES:
        assert loaded.encode(s) == tok.encode(s)
    assert Tokenizer.from_pretrained(saved).encode(SENTENCES[3]) == tok.encode(SENTENCES[3])


def test_missing_files_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json.*vocab\.json.*merges\.txt") as e:
        Tokenizer.from_pretrained(tmp_path)
    assert str(tmp_path) in str(e.value)
    (tmp_path / "vocab.json").write_text("{}")  # merges.txt still missing
    with pytest.raises(FileNotFoundError):
        Tokenizer.from_pretrained(tmp_path)


def test_training_is_deterministic(saved, tmp_path):
    Tokenizer.train(CORPUS, vocab_size=400).save_pretrained(tmp_path)
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        assert (tmp_path / name).read_bytes() == (saved / name).read_bytes(), name


def test_added_special_tokens_survive_save(tmp_path):
    tok = Tokenizer.train(CORPUS, vocab_size=300)
    assert tok.add_special_tokens(["en_XX", "de_DE"]) == 2
    s = "en_XX The quick brown fox. de_DE"
    ids = tok.encode(s)
    assert ids[1] == tok.vocab_size - 2 and ids[-2] == tok.vocab_size - 1
    tok.save_pretrained(tmp_path)
    assert Tokenizer.from_pretrained(tmp_path).encode(s) == ids
    assert transformers.AutoTokenizer.from_pretrained(tmp_path)(s)["input_ids"] == ids


def test_mbart_language_templates(tmp_path):
    """mBART: sources `text </s> en_XX`, targets `text </s> ro_RO`, kept through truncation and saving."""
    tok = Tokenizer.train(CORPUS, vocab_size=300)
    tok.add_special_tokens(["en_XX", "ro_RO"])
    en, ro = tok.vocab_size - 2, tok.vocab_size - 1
    plain = tok.encode("The quick brown fox.")[1:-1]  # BART's <s> ... </s> stripped
    tok.set_languages("en_XX", "ro_RO")
    assert tok.encode("The quick brown fox.") == plain + [tok.eos_token_id, en]
    assert tok.encode_target("The quick brown fox.") == plain + [tok.eos_token_id, ro]
    assert tok.encode("The quick brown fox.", max_length=4) == plain[:2] + [tok.eos_token_id, en]
    assert tok.encode_target("The quick brown fox.", max_length=4) == plain[:2] + [tok.eos_token_id, ro]
    assert tok(["The quick brown fox.", "A"])["input_ids"][0].tolist() == plain + [tok.eos_token_id, en]
    assert tok.decode(tok.encode_target("Zürich — café")) == "Zürich — café"
    tok.save_pretrained(tmp_path)
    loaded = Tokenizer.from_pretrained(tmp_path)
    assert (loaded.src_lang, loaded.tgt_lang) == ("en_XX", "ro_RO")
    assert loaded.encode_target("The quick brown fox.") == plain + [tok.eos_token_id, ro]
    # the source template lives in tokenizer.json itself, so transformers encodes sources alike
    assert transformers.AutoTokenizer.from_pretrained(tmp_path)("The quick brown fox.")["input_ids"] == \
        plain + [tok.eos_token_id, en]
    with pytest.raises(ValueError, match="de_DE"):
        tok.set_languages("en_XX", "de_DE")


def test_truncation_keeps_mbart_language_code(tmp_path):
    """mBART's template is `X </s> lang`: truncation used to force `</s>` last and drop the language code.
    The oracle is transformers' own truncation of the same tokenizer.json (it keeps the template's specials)."""
    from tokenizers import processors

    tok = Tokenizer.train(CORPUS, vocab_size=300)
    tok.add_special_tokens(["en_XX"])
    lang = tok.vocab_size - 1
    tok._tok.post_processor = processors.TemplateProcessing(
        single="$A </s> en_XX", special_tokens=[("</s>", tok.eos_token_id), ("en_XX", lang)])
    text = "The quick brown fox jumps over the lazy dog."
    assert tok.encode(text, max_length=6)[-2:] == [tok.eos_token_id, lang]
    assert tok([text, "A"], max_length=6)["input_ids"][0].tolist()[-2:] == [tok.eos_token_id, lang]
    tok.save_pretrained(tmp_path)
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    for n in (3, 6, 9):
        assert tok.encode(text, max_length=n) == hf(text, truncation=True, max_length=n)["input_ids"], n
    with pytest.raises(ValueError, match="no room for the special tokens"):
        tok.encode(text, max_length=1)


def test_damaged_tokenizer_json(saved, tmp_path):
    (tmp_path / "tokenizer.json").write_bytes((saved / "tokenizer.json").read_bytes()[:500])
    with pytest.raises(TokenizerError, match="cannot read the tokenizer files"):
        Tokenizer.from_pretrained(tmp_path)


def test_encode_without_special_tokens_is_the_text_alone():
    from minidq.tasks import SAMPLES

    text = "She carries our green window with a big dog."
    bart = Tokenizer.from_pretrained(SAMPLES / "summarization" / "teacher")
    assert bart.encode(text, add_special_tokens=False) == bart.encode(text)[1:-1]  # <s> ... </s>
    mbart = Tokenizer.from_pretrained(SAMPLES / "translation" / "teacher")
    assert mbart.encode(text, add_special_tokens=False) == mbart.encode(text)[:-2]  # ... </s> en_XX
    assert mbart.encode_target(text)[:-2] == mbart.encode(text, add_special_tokens=False)
