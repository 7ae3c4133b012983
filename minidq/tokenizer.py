"""BART's tokenizer: byte-level BPE, trained here or loaded from Hugging Face files.

Why byte-level BPE: BPE starts from single symbols and greedily merges the most frequent
adjacent pair, so common words become one token and rare words split into pieces. Starting
from the 256 *bytes* of UTF-8 (not from characters) means every string, in any script or
with emoji, is encodable without an `<unk>`, and decoding restores the text exactly.
GPT-2 and BART draw those bytes as printable characters (a space is 'Ġ'), so the
vocabulary can be stored as plain JSON.

Why these ids: BART was trained with fairseq's dictionary, which puts `<s>`=0, `<pad>`=1,
`</s>`=2, `<unk>`=3 first and appends `<mask>` last (50264 in facebook/bart-*). Keeping the
same layout means a config, a checkpoint and this tokenizer agree on every special id.

mBART: a source is `text </s> en_XX` and a target `text </s> ro_RO` (no `<s>`: the language
code plays its part). `set_languages("en_XX", "ro_RO")` switches a tokenizer to that template;
the source template lives in tokenizer.json's post-processor (so any copy of that file encodes
sources right), the language pair in tokenizer_config.json as `src_lang` / `tgt_lang`, as HF's
MBartTokenizer keeps them.

The heavy lifting is done by the `tokenizers` library (Rust); this file only sets it up the
way BART does and gives it the small API the rest of minidq uses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

import torch
from tokenizers import AddedToken, decoders, models, pre_tokenizers, processors, trainers
from tokenizers import Tokenizer as _Backend

from .errors import MinidqError

BOS, PAD, EOS, UNK, MASK = "<s>", "<pad>", "</s>", "<unk>", "<mask>"


def _bart_backend(vocab: dict[str, int], merges: list[tuple[str, str]]) -> _Backend:
    """A `tokenizers.Tokenizer` set up exactly like BART's from a vocab and its merges."""
    backend = _Backend(models.BPE(vocab=vocab, merges=merges))  # no unk: every byte is in vocab
    # BART does not add a space in front of the text: "Hello" and " Hello" are different tokens.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([BOS, PAD, EOS, UNK])
    # as in BART, "<mask>" swallows the space before it, so "a <mask>" masks the word " b"
    backend.add_special_tokens([AddedToken(MASK, lstrip=True, normalized=False)])
    # <s> text </s>, and <s> a </s></s> b </s> for pairs
    backend.post_processor = processors.RobertaProcessing(
        (EOS, vocab[EOS]), (BOS, vocab[BOS]), trim_offsets=True, add_prefix_space=False
    )
    return backend


class TokenizerError(MinidqError, ValueError):
    """Tokenizer files that cannot be read, or that lack BART's special tokens."""


class Tokenizer:
    """Byte-level BPE with BART's special tokens; see the module docstring for the why."""

    def __init__(self, backend: _Backend):
        self._tok = backend
        self.src_lang: str | None = None  # mBART language codes; None for BART
        self.tgt_lang: str | None = None
        missing = [t for t in (BOS, PAD, EOS, UNK, MASK) if backend.token_to_id(t) is None]
        if missing:
            raise TokenizerError(f"tokenizer lacks BART's special tokens {missing}")
        self.bos_token_id: int = backend.token_to_id(BOS)
        self.pad_token_id: int = backend.token_to_id(PAD)
        self.eos_token_id: int = backend.token_to_id(EOS)
        self.unk_token_id: int = backend.token_to_id(UNK)
        self.mask_token_id: int = backend.token_to_id(MASK)
        if isinstance(backend.post_processor, processors.TemplateProcessing):  # mBART's "$A </s> en_XX",
            template = json.loads(backend.post_processor.__getstate__())["single"]  # from set_languages
            self.src_lang = template[-1]["SpecialToken"]["id"]

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
        """Learn at most `vocab_size` tokens (specials included) from `texts`; deterministic."""
        backend = _Backend(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size - 1,  # keep one slot for <mask>, which goes last
            min_frequency=min_frequency,
            special_tokens=[BOS, PAD, EOS, UNK],  # ids 0..3, in this order
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer)
        # rebuild from vocab + merges: <mask> joins the vocab as BART's vocab.json has it, and a
        # trained tokenizer is set up by the same code as one loaded from vocab.json + merges.txt
        model = json.loads(backend.to_str())["model"]
        vocab = dict(model["vocab"])
        vocab[MASK] = len(vocab)
        # tokenizers >= 0.20 stores merges as pairs, older versions as "a b" strings
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        return cls(_bart_backend(vocab, merges))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Tokenizer:
        """Load `tokenizer.json` if present, else `vocab.json` + `merges.txt` (GPT-2/BART files)."""
        path = Path(path)
        try:  # the tokenizers library raises a bare Exception for a damaged file
            if (path / "tokenizer.json").is_file():
                tok = cls(_Backend.from_file(str(path / "tokenizer.json")))
                config = path / "tokenizer_config.json"
                langs = json.loads(config.read_text()) if config.is_file() else {}
                if langs.get("src_lang") and langs.get("tgt_lang"):
                    tok.set_languages(langs["src_lang"], langs["tgt_lang"])
                return tok
            if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
                vocab, merges = models.BPE.read_file(str(path / "vocab.json"), str(path / "merges.txt"))
                return cls(_bart_backend(vocab, merges))
        except TokenizerError as e:
            raise TokenizerError(f"{path}: {e}") from None
        except Exception as e:
            raise TokenizerError(f"{path}: cannot read the tokenizer files ({e})") from None
        raise FileNotFoundError(
            f"no tokenizer in {path}: looked for tokenizer.json, or vocab.json + merges.txt"
        )

    def save_pretrained(self, path: str | Path) -> None:
        """Write the files transformers' AutoTokenizer / BartTokenizer(Fast) load."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._tok.save(str(path / "tokenizer.json"))
        self._tok.model.save(str(path))  # vocab.json + merges.txt, for GPT-2-style loaders
        mask = {"content": MASK, "lstrip": True, "normalized": False, "rstrip": False,
                "single_word": False, "special": True}
        specials = {"bos_token": BOS, "eos_token": EOS, "unk_token": UNK, "sep_token": EOS,
                    "pad_token": PAD, "cls_token": BOS, "mask_token": mask}
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast" if self.tgt_lang else "BartTokenizer",
            **({"src_lang": self.src_lang, "tgt_lang": self.tgt_lang} if self.tgt_lang else {}),
            "add_prefix_space": False,
            "errors": "replace",
            # keep " ." as it is on decode: the text must come back byte for byte
            "clean_up_tokenization_spaces": False,
            **specials,
        }
        (path / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")
        (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def fingerprint(self) -> str:
        """SHA-256 of the vocabulary (token -> id), whatever files it was read from: a trained
        model records it, so another tokenizer of the same size is caught, not decoded into garbage."""
        vocab = sorted(self._tok.get_vocab(with_added_tokens=True).items(), key=lambda item: item[1])
        return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()

    def add_special_tokens(self, tokens: list[str]) -> int:
        """Append whole-string tokens (e.g. mBART language codes like "en_XX"); returns how many were new.

        They are saved in tokenizer.json (vocab.json + merges.txt hold BART's vocabulary only).
        """
        return self._tok.add_special_tokens([AddedToken(t, normalized=False) for t in tokens])

    def set_languages(self, src_lang: str, tgt_lang: str) -> None:
        """mBART's templates: sources `text </s> src_lang`, targets `text </s> tgt_lang`.

        The decoder input is the target shifted right with its last token wrapped to the front,
        so the decoder starts from the target-language code (Bart.shift_right for mbart)."""
        missing = [t for t in (src_lang, tgt_lang) if self._tok.token_to_id(t) is None]
        if missing:
            raise TokenizerError(f"language code(s) {missing} are not tokens of this tokenizer "
                             "(add them with add_special_tokens)")
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self._tok.post_processor = processors.TemplateProcessing(
            single=f"$A {EOS} {src_lang}", special_tokens=[(EOS, self.eos_token_id), (src_lang, self.token_id(src_lang))])

    def token_id(self, token: str) -> int:
        tid = self._tok.token_to_id(token)
        if tid is None:
            raise KeyError(f"{token!r} is not in the vocabulary")
        return tid

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """The vocabulary strings behind ids, in the byte-to-unicode alphabet ('Ġ' is a space)."""
        return [self._tok.id_to_token(int(i)) for i in ids]

    def encode(self, text: str, max_length: int | None = None, add_special_tokens: bool = True) -> list[int]:
        """`<s> text </s>` (mBART: `text </s> src_lang`); when longer than max_length, the text is
        cut but the special tokens are kept. add_special_tokens=False: the text's own ids (as HF's)."""
        e = self._tok.encode(text, add_special_tokens=add_special_tokens)
        return self._truncate(e.ids, e.special_tokens_mask, max_length)

    def encode_target(self, text: str, max_length: int | None = None) -> list[int]:
        """A decoder-side text: as `encode` for BART, `text </s> tgt_lang` for mBART."""
        if self.tgt_lang is None:
            return self.encode(text, max_length)
        ids = self.encode(text, add_special_tokens=False) + [self.eos_token_id, self.token_id(self.tgt_lang)]
        return self._truncate(ids, [0] * (len(ids) - 2) + [1, 1], max_length)

    def decode(self, ids: Iterable[int] | torch.Tensor, skip_special_tokens: bool = True) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def batch_decode(self, batch: Iterable[Iterable[int]] | torch.Tensor,
                     skip_special_tokens: bool = True) -> list[str]:
        batch = batch.tolist() if isinstance(batch, torch.Tensor) else batch
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def __call__(self, texts: str | list[str], max_length: int | None = None,
                 padding: bool | str = True, return_tensors: str | None = "pt") -> dict:
        """Encode a batch like HF tokenizers: input_ids and attention_mask, right-padded.

        padding: True/"longest" pads to the longest row, "max_length" to max_length, False none.
        return_tensors: "pt" for (B, T) LongTensors, None for lists of lists.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        rows = [self._truncate(e.ids, e.special_tokens_mask, max_length) for e in self._tok.encode_batch(texts)]
        if padding == "max_length" and max_length is None:
            raise TokenizerError('padding="max_length" needs a max_length')
        width = max_length if padding == "max_length" else max(map(len, rows), default=0)
        if padding:
            masks = [[1] * len(r) + [0] * (width - len(r)) for r in rows]
            rows = [r + [self.pad_token_id] * (width - len(r)) for r in rows]
        else:
            masks = [[1] * len(r) for r in rows]
        if return_tensors == "pt":
            return {"input_ids": torch.tensor(rows, dtype=torch.long),
                    "attention_mask": torch.tensor(masks, dtype=torch.long)}
        return {"input_ids": rows, "attention_mask": masks}

    def _truncate(self, ids: list[int], special: list[int], max_length: int | None) -> list[int]:
        """Cut the text, not the special tokens the template put around it: BART's `<s> X </s>`
        keeps `<s>` and `</s>`, mBART's `X </s> en_XX` keeps `</s> en_XX` (the language code).
        special: 1 where ids holds a special token (tokenizers' special_tokens_mask)."""
        if max_length is None or len(ids) <= max_length:
            return ids
        head = next((i for i, s in enumerate(special) if not s), len(ids))      # leading specials
        tail = next((i for i, s in enumerate(reversed(special)) if not s), 0)   # trailing specials
        if max_length < head + tail:
            raise TokenizerError(f"max_length={max_length} leaves no room for the special tokens "
                             f"{self.convert_ids_to_tokens(ids[:head] + ids[len(ids) - tail:])}")
        return ids[: max_length - tail] + ids[len(ids) - tail:]

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size})"
