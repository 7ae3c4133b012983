"""Lesson 01's exercise checks: decoding ids by hand, and padding a batch."""

from __future__ import annotations

import torch

from minidq.tokenizer import Tokenizer

CORPUS = [
    "The teacher is a large model and the student is a small model.",
    "The student learns from the teacher by copying some of its layers.",
    "Quantization stores each weight in a few bits instead of thirty-two.",
    "Zürich, München and Genève are cities; café and naïve keep their accents.",
]
# texts the small vocabulary never saw whole: emoji and CJK characters end up cut across tokens
TEXTS = ["The student learns quantization in Zürich 🙂, xylophone!", "Genève — café 大阪 🚀",
         " leading  spaces\n", "東京 🙂🙂", "a", ""]


def check_decode_ids(decode_ids) -> None:
    """decode_ids(ids, id_to_token, special_ids) must give back the exact text, the special tokens
    dropped, even where one character's bytes are split over several tokens."""
    tok = Tokenizer.train(CORPUS, vocab_size=300)
    id_to_token = dict(enumerate(tok.convert_ids_to_tokens(range(tok.vocab_size))))
    specials = {tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id}
    split = [s for s in TEXTS if any(len(t) == 1 and ord(t) > 255 for t in tok.convert_ids_to_tokens(tok.encode(s)))]
    assert split, "the check's texts should cut a character across tokens"
    for text in TEXTS:
        ids = tok.encode(text)
        got = decode_ids(ids, id_to_token, specials)
        assert got == text, f"{text!r}: decode_ids gave {got!r}"
    padded = tok.encode("The teacher.") + [tok.pad_token_id] * 3
    got = decode_ids(padded, id_to_token, specials)
    assert got == "The teacher.", f"special tokens must be dropped, got {got!r}"


def check_pad_batch(pad_batch) -> None:
    """pad_batch(sequences, pad_id) -> (input_ids, attention_mask): right-padded long tensors of
    shape (batch, longest), the mask 1 on real tokens and 0 on padding."""
    sequences = [[0, 287, 314, 17, 2], [0, 36, 224, 84, 429, 317, 331, 2], [0, 2], [0, 5, 6, 2]]
    ids, mask = pad_batch(sequences, 1)
    assert isinstance(ids, torch.Tensor) and isinstance(mask, torch.Tensor)
    assert ids.shape == mask.shape == (4, 8), f"shape {tuple(ids.shape)}: expected (batch, longest) = (4, 8)"
    assert ids.dtype == mask.dtype == torch.long, "both tensors are torch.long, as the tokenizer returns them"
    for row, s in enumerate(sequences):
        assert ids[row, : len(s)].tolist() == s, f"row {row}: the ids come first (padding on the right)"
        assert (ids[row, len(s):] == 1).all(), f"row {row}: the padding is pad_id"
        assert mask[row].tolist() == [1] * len(s) + [0] * (8 - len(s)), f"row {row}: mask {mask[row].tolist()}"
    ids, mask = pad_batch([[7, 8, 9]], 0)
    assert ids.tolist() == [[7, 8, 9]] and mask.tolist() == [[1, 1, 1]], "one sequence: nothing to pad"
