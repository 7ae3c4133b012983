"""Lesson 13's exercise checks accept the solutions and reject plausible wrong answers."""

import re
from collections import Counter

import pytest

from checks.lesson_13 import check_chrf_pair, check_fact_check, check_target_with_language
from solutions import lesson_13 as solutions


def test_the_solutions_pass():
    check_chrf_pair(solutions.chrf_pair)
    check_target_with_language(solutions.target_with_language)
    check_fact_check(solutions.fact_check)


def chrf_with_spaces(pred, ref):  # keeps the spaces in the character n-grams
    def grams(t, n):
        return Counter(t[i:i + n] for i in range(len(t) - n + 1))
    P = R = 0.0
    for n in range(1, 7):
        p, r = grams(pred, n), grams(ref, n)
        hits = sum((p & r).values())
        P += hits / max(sum(p.values()), 1) / 6
        R += hits / max(sum(r.values()), 1) / 6
    return 0.0 if P + R == 0 else 100 * 5 * P * R / (4 * P + R)


def chrf_beta_1(pred, ref):  # F1 instead of chrF's recall-weighted F2
    return solutions.chrf_pair(pred, ref, beta=1.0)


def chrf_four_orders(pred, ref):  # BLEU's orders 1..4 instead of 1..6
    return solutions.chrf_pair(pred, ref, order=4)


@pytest.mark.parametrize("wrong", [chrf_with_spaces, chrf_beta_1, chrf_four_orders])
def test_chrf_check_rejects(wrong):
    with pytest.raises(AssertionError):
        check_chrf_pair(wrong)


def language_first(tok, text, lang):  # the source-side habit of other models: the code in front
    solutions.target_with_language(tok, text, lang)
    return [tok.token_id(lang)] + tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]


def no_eos(tok, text, lang):
    return solutions.target_with_language(tok, text, lang)[:-2] + [tok.token_id(lang)]


def added_every_time(tok, text, lang):  # adds the code even when it exists: a duplicate in the vocabulary
    tok.add_special_tokens([lang + " "])
    return solutions.target_with_language(tok, text, lang)


@pytest.mark.parametrize("wrong", [language_first, no_eos, added_every_time])
def test_target_check_rejects(wrong):
    with pytest.raises(AssertionError):
        check_target_with_language(wrong)


def substring_match(pred, facts, distractors):  # `fact in pred`: "July 1" is found in "July 12"
    right = sum(f.lower() in pred.lower() for f in facts)
    wrong = sum(d.lower() in pred.lower() for d in distractors)
    p = right / (right + wrong) if right + wrong else 0.0
    r = right / len(facts)
    return right == len(facts) and wrong == 0, 2 * p * r / (p + r) if p + r else 0.0


def case_sensitive(pred, facts, distractors):
    def mentions(f):
        return re.search(rf"(?<!\w)(?<!\d,){re.escape(f)}(?!\w)(?!,\d)", pred) is not None
    right, wrong = sum(map(mentions, facts)), sum(map(mentions, distractors))
    p = right / (right + wrong) if right + wrong else 0.0
    r = right / len(facts)
    return right == len(facts) and wrong == 0, 2 * p * r / (p + r) if p + r else 0.0


def distractors_ignored(pred, facts, distractors):  # a wrong town named costs nothing
    return solutions.fact_check(pred, facts, [])


@pytest.mark.parametrize("wrong", [substring_match, case_sensitive, distractors_ignored])
def test_fact_check_rejects(wrong):
    with pytest.raises(AssertionError):
        check_fact_check(wrong)
