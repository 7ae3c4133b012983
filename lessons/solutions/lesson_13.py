"""Solutions to the exercises of lesson 13 (the paper's other experiments: translation, long-form QA)."""

import re
from collections import Counter


def chrf_pair(pred: str, ref: str, order: int = 6, beta: float = 2.0) -> float:
    """chrF of one sentence pair (x 100): character n-grams of orders 1..order with spaces removed;
    precision and recall averaged over the orders present on both sides; then F-beta."""
    p_text, r_text = "".join(pred.split()), "".join(ref.split())
    precisions, recalls = [], []
    for n in range(1, order + 1):
        p = Counter(p_text[i:i + n] for i in range(len(p_text) - n + 1))
        r = Counter(r_text[i:i + n] for i in range(len(r_text) - n + 1))
        if p and r:
            hits = sum((p & r).values())
            precisions.append(hits / sum(p.values()))
            recalls.append(hits / sum(r.values()))
    if not precisions:
        return 0.0
    P, R = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    return 0.0 if P + R == 0 else 100 * (1 + beta ** 2) * P * R / (beta ** 2 * P + R)


def target_with_language(tok, text: str, lang: str) -> list[int]:
    """mBART target ids `text </s> lang` from minidq's tokenizer: the language code is added as a
    special token if the tokenizer lacks it, made the target language, and encode_target does the rest."""
    try:
        tok.token_id(lang)
    except KeyError:  # token_id raises for a token the vocabulary lacks
        tok.add_special_tokens([lang])
    tok.set_languages(tok.src_lang, lang)
    return tok.encode_target(text)


def fact_check(pred: str, facts: list[str], distractors: list[str]) -> tuple[bool, float]:
    """(every fact mentioned and no distractor, fact F1): a mention is a whole-word,
    case-insensitive match, not inside a longer word or a number written with commas;
    precision counts facts and distractors mentioned, recall the facts."""
    def mentions(fact):
        return re.search(rf"(?<!\w)(?<!\d,){re.escape(fact)}(?!\w)(?!,\d)", pred, flags=re.IGNORECASE) is not None
    right = sum(mentions(f) for f in facts)
    wrong = sum(mentions(d) for d in distractors)
    precision = right / (right + wrong) if right + wrong else 0.0
    recall = right / len(facts) if facts else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return right == len(facts) and wrong == 0, f1
