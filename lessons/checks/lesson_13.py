"""Checks for the exercises of lesson 13 (the paper's other experiments: translation, long-form QA)."""

from __future__ import annotations

from pathlib import Path

from minidq import Tokenizer
from minidq.metrics import chrf, fact_scores

ROOT = Path(__file__).resolve().parents[2]

PAIRS = [  # (prediction, reference): equal, reordered, a wrong ending, short, disjoint, empty-ish
    ("Ea cară fereastra noastră verde cu un câine mare.", "Ea cară fereastra noastră verde cu un câine mare."),
    ("Cară fereastra noastră verde cu un câine mare.", "Ea cară fereastra noastră verde cu un câine mare."),
    ("El ajută calul meu fericit zilnic.", "În fiecare zi el ajută calul meu fericit."),
    ("Câinii negri.", "Câinele negru."),
    ("Ieri am văzut o casă", "Am văzut o casă ieri."),
    ("ab c", "abc"),
    ("abc", "xyz"),
    ("Azi va vedea marea.", "Astăzi o să vadă marea."),
]


def check_chrf_pair(chrf_pair) -> None:
    for pred, ref in PAIRS:
        mine, theirs = chrf_pair(pred, ref), chrf([pred], [ref])
        assert abs(mine - theirs) < 1e-9, f"chrf_pair({pred!r}, {ref!r}) = {mine:.4f}, expected {theirs:.4f}"
    assert chrf_pair("abc", "abc") == 100.0 and chrf_pair("abc", "xyz") == 0.0


def check_target_with_language(target_with_language,
                               teacher: Path = ROOT / "data_samples" / "translation" / "teacher") -> None:
    tok = Tokenizer.from_pretrained(teacher)
    old_size = tok.vocab_size
    text = "Le chien noir."
    ids = target_with_language(tok, text, "fr_XX")
    assert ids == tok.encode(text, add_special_tokens=False) + [tok.eos_token_id, tok.token_id("fr_XX")], \
        f"{tok.convert_ids_to_tokens(ids)}: expected the text, then </s>, then fr_XX"
    assert tok.token_id("fr_XX") >= old_size, "fr_XX should be a new token, after the old vocabulary"
    assert tok.decode(ids) == text
    romanian = "Ea cară fereastra noastră verde."
    fresh = Tokenizer.from_pretrained(teacher)
    assert target_with_language(tok, romanian, "ro_RO") == fresh.encode_target(romanian), \
        "for ro_RO (a code the tokenizer has) the ids must be the shipped template's"
    assert tok.vocab_size == old_size + 1, "adding fr_XX once (and ro_RO never) grows the vocabulary by one"


FACT_CASES = [  # (prediction, facts, distractors)
    ("Shourathford holds a kite festival every September.", ["Shourathford", "kite", "September"], ["October"]),
    ("Shourathford holds a kite festival every October.", ["Shourathford", "kite", "September"], ["October"]),
    ("The plant opened on July 12.", ["July 1"], ["July 12"]),            # "July 1" is not in "July 12"
    ("It has 1,634 homes.", ["634"], ["1,634"]),                          # nor "634" in "1,634"
    ("chairman Olaf Bek spoke.", ["Chairman Olaf Bek"], []),              # case does not matter
    ("Mobriburg lies on the Dovouwe. Ratechemville too.", ["Mobriburg", "Dovouwe", "April"], ["Ratechemville"]),
    ("Nothing relevant at all.", ["Mobriburg", "April"], ["Rable"]),
    ("The kites of Rable fly in Rable.", ["kite"], ["Rable"]),           # "kite" is not a whole word of "kites"
]


def check_fact_check(fact_check) -> None:
    for pred, facts, distractors in FACT_CASES:
        right, f1 = fact_check(pred, facts, distractors)
        exp_right, exp_f1 = fact_scores(pred, facts, distractors)
        assert bool(right) == bool(exp_right), f"{pred!r}: all facts right and no distractor should be {exp_right}"
        assert abs(f1 - exp_f1) < 1e-9, f"{pred!r}: fact F1 {f1:.4f}, expected {exp_f1:.4f}"
