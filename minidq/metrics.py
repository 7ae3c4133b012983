"""ROUGE and BLEU, written out so the reader sees exactly what the numbers in a results table mean.

ROUGE (Lin, 2004) scores a summary by its overlap with a reference: ROUGE-N counts shared
n-grams, ROUGE-L the longest common subsequence (in-order words, gaps allowed), ROUGE-Lsum
the same per sentence ("union LCS"). Each gives precision (share of the prediction that is in
the reference), recall (share of the reference that is covered) and their harmonic mean F1;
papers report the corpus mean of per-example F1. These functions reproduce Google's
`rouge-score` package (default tokenizer, no stemming), which tests/test_metrics.py checks.

BLEU (Papineni et al., 2002) scores a translation by n-gram precision against a reference,
pooled over the whole corpus, times a brevity penalty for output shorter than the reference.
It reproduces `sacrebleu.corpus_bleu` with its defaults: 13a tokenization, n-grams 1..4,
"exp" smoothing.

chrF (Popović, 2015) scores character n-grams (1..6, spaces removed) with recall weighted
twice as much as precision (F-beta, beta = 2): kinder than BLEU to a word with the right stem
and a wrong ending, which matters for an inflected language like Romanian. It reproduces
`sacrebleu.corpus_chrf` with its defaults.

The content score is for the toy tasks with one-to-many references (data_samples/): each
example lists the facts every right answer states and the distractors its source also
mentions. It says whether the model got the facts right, whatever phrasing it chose, which
ROUGE against one randomly drawn phrasing cannot.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from .data import DataError

# ---------------------------------------------------------------- ROUGE


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float


def _score(hits: int, n_pred: int, n_ref: int) -> Score:
    """Precision/recall/F1 from a match count; an empty side scores 0, never divides by 0."""
    precision = hits / n_pred if n_pred else 0.0
    recall = hits / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return Score(precision, recall, f1)


def rouge_tokenize(text: str) -> list[str]:
    """rouge-score's default tokenizer: lowercase, anything but [a-z0-9] separates words.

    Note that accented letters are separators too ("café" -> ["caf"]), as in the reference.
    """
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(pred: list[str], ref: list[str], n: int) -> Score:
    """Shared n-grams, each counted at most as often as it occurs on both sides (clipped)."""
    pred_grams, ref_grams = _ngrams(pred, n), _ngrams(ref, n)
    hits = sum((pred_grams & ref_grams).values())
    return _score(hits, sum(pred_grams.values()), sum(ref_grams.values()))


def _lcs_table(ref: list[str], pred: list[str]) -> list[list[int]]:
    """table[i][j] = length of the LCS of ref[:i] and pred[:j] (the textbook dynamic programme)."""
    table = [[0] * (len(pred) + 1) for _ in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        for j in range(1, len(pred) + 1):
            if ref[i - 1] == pred[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table


def rouge_l(pred: list[str], ref: list[str]) -> Score:
    """Longest common subsequence: rewards words in the right order without needing them adjacent."""
    if not pred or not ref:
        return Score(0.0, 0.0, 0.0)
    return _score(_lcs_table(ref, pred)[-1][-1], len(pred), len(ref))


def _lcs_positions(ref: list[str], pred: list[str]) -> set[int]:
    """Positions in ref of one LCS with pred.

    Several LCSs can exist; which one we walk back along changes the union in ROUGE-Lsum,
    so ties go the way rouge-score (and ROUGE-1.5.5) break them: prefer moving up in ref.
    """
    table = _lcs_table(ref, pred)
    i, j, positions = len(ref), len(pred), set()
    while i > 0 and j > 0:
        if ref[i - 1] == pred[j - 1]:
            positions.add(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return positions


def rouge_lsum(pred_sents: list[list[str]], ref_sents: list[list[str]]) -> Score:
    """Summary-level LCS: for each reference sentence, the union of its LCSs with every predicted
    sentence counts as hits, so a fact is credited wherever the summary put it.

    A word is credited no more often than it occurs on either side (ROUGE-1.5.5 does this too).
    """
    n_pred, n_ref = sum(map(len, pred_sents)), sum(map(len, ref_sents))
    if not n_pred or not n_ref:
        return Score(0.0, 0.0, 0.0)
    pred_left = Counter(t for s in pred_sents for t in s)
    ref_left = Counter(t for s in ref_sents for t in s)
    hits = 0
    for ref in ref_sents:
        union = set().union(*(_lcs_positions(ref, pred) for pred in pred_sents))
        for token in (ref[i] for i in sorted(union)):
            if pred_left[token] > 0 and ref_left[token] > 0:
                hits += 1
                pred_left[token] -= 1
                ref_left[token] -= 1
    return _score(hits, n_pred, n_ref)


def rouge_scores(pred: str, ref: str) -> dict[str, Score]:
    """All four ROUGE scores of one prediction; for ROUGE-Lsum, sentences are separated by newlines."""
    pred_tokens, ref_tokens = rouge_tokenize(pred), rouge_tokenize(ref)

    def sentences(text: str) -> list[list[str]]:
        return [rouge_tokenize(s) for s in text.split("\n") if s]

    return {
        "rouge1": rouge_n(pred_tokens, ref_tokens, 1),
        "rouge2": rouge_n(pred_tokens, ref_tokens, 2),
        "rougeL": rouge_l(pred_tokens, ref_tokens),
        "rougeLsum": rouge_lsum(sentences(pred), sentences(ref)),
    }


def rouge(preds: list[str], refs: list[str]) -> dict[str, float]:
    """Corpus ROUGE: the mean over examples of each score's F1, in [0, 1]."""
    _check_pairs(preds, refs)
    per_example = [rouge_scores(p, r) for p, r in zip(preds, refs)]
    return {key: sum(s[key].f1 for s in per_example) / len(per_example) for key in per_example[0]}


# ---------------------------------------------------------------- BLEU


def tokenize_13a(line: str) -> list[str]:
    """The mteval-v13a tokenizer used by WMT and sacrebleu's default: split off punctuation and
    symbols, but keep "3.5" and "1,000" whole, and cut a dash after a digit ("5-4" -> "5 - 4")."""
    line = line.rstrip()  # sacrebleu strips trailing whitespace first
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        line = line.replace(entity, char)
    line = re.sub(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])", r" \1 ", f" {line} ")  # ASCII symbols
    line = re.sub(r"([^0-9])([\.,])", r"\1 \2 ", line)  # . and , unless after a digit
    line = re.sub(r"([\.,])([^0-9])", r" \1 \2", line)  # . and , unless before a digit
    line = re.sub(r"([0-9])(-)", r"\1 \2 ", line)
    return line.split()


def bleu(preds: list[str], refs: list[str], max_order: int = 4) -> float:
    """Corpus BLEU in [0, 100] with one reference per prediction.

    Matches are pooled over the corpus before dividing (not averaged per sentence):
        BLEU = BP * exp(mean_n log p_n),  p_n = clipped matching n-grams / predicted n-grams
        BP   = exp(1 - ref_len / pred_len) when the predictions are shorter, else 1.
    """
    _check_pairs(preds, refs)
    matches, totals = [0] * max_order, [0] * max_order
    pred_len = ref_len = 0
    for pred, ref in zip(preds, refs):
        pred_tokens, ref_tokens = tokenize_13a(pred), tokenize_13a(ref)
        pred_len, ref_len = pred_len + len(pred_tokens), ref_len + len(ref_tokens)
        for n in range(1, max_order + 1):
            pred_grams, ref_grams = _ngrams(pred_tokens, n), _ngrams(ref_tokens, n)
            matches[n - 1] += sum((pred_grams & ref_grams).values())
            totals[n - 1] += sum(pred_grams.values())
    # no match at all, or an order with no predicted n-gram (every output shorter than n):
    # sacrebleu takes log(0) as a huge negative number, so the score is 0
    if not any(matches) or not all(totals):
        return 0.0
    log_precisions, halvings = [], 0
    for match, total in zip(matches, totals):
        if match == 0:
            halvings += 1  # "exp" smoothing (mteval's): 1/2, 1/4, ... of a match for each empty order
            log_precisions.append(math.log(1 / (2**halvings * total)))
        else:
            log_precisions.append(math.log(match / total))
    brevity_penalty = math.exp(1 - ref_len / pred_len) if pred_len < ref_len else 1.0
    return 100 * brevity_penalty * math.exp(sum(log_precisions) / max_order)


# ---------------------------------------------------------------- chrF


def _char_ngrams(text: str, n: int) -> Counter:
    text = "".join(text.split())  # chrF ignores whitespace
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def chrf(preds: list[str], refs: list[str], char_order: int = 6, beta: float = 2.0) -> float:
    """Corpus chrF in [0, 100]: n-gram counts pooled over the corpus per order, then precision
    and recall averaged over the orders that occur on both sides, then F-beta of the averages."""
    _check_pairs(preds, refs)
    hyp, ref, match = [0] * char_order, [0] * char_order, [0] * char_order
    for pred, reference in zip(preds, refs):
        for n in range(1, char_order + 1):
            p, r = _char_ngrams(pred, n), _char_ngrams(reference, n)
            hyp[n - 1] += sum(p.values()) if r else 0  # as sacrebleu: a reference too short for n says nothing
            ref[n - 1] += sum(r.values())
            match[n - 1] += sum((p & r).values())
    orders = [n for n in range(char_order) if hyp[n] and ref[n]]
    if not orders:
        return 0.0
    precision = sum(match[n] / hyp[n] for n in orders) / len(orders)
    recall = sum(match[n] / ref[n] for n in orders) / len(orders)
    if precision + recall == 0:
        return 0.0
    return 100 * (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


# ---------------------------------------------------------------- content (facts)


def mentions(text: str, fact: str) -> bool:
    """`fact` occurs in `text` as whole words ("July 1" is not in "July 12"), ignoring case
    (a role may open the sentence: "Chairman ...")."""
    # not inside a longer word, nor inside a number written with commas ("634" in "1,634")
    pattern = rf"(?<!\w)(?<!\d,){re.escape(fact)}(?!\w)(?!,\d)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def fact_scores(pred: str, facts: list[str], distractors: list[str]) -> tuple[bool, float]:
    """(every fact stated and no distractor, fact F1) for one prediction.

    Precision counts the facts and distractors the prediction mentions: naming the rival
    company instead of the right one costs precision as well as recall."""
    right = sum(mentions(pred, f) for f in facts)
    wrong = sum(mentions(pred, d) for d in distractors)
    score = _score(right, right + wrong, len(facts))
    return right == len(facts) and wrong == 0, score.f1


def content(preds: list[str], facts: list[list[str]], distractors: list[list[str]]) -> dict[str, float]:
    """{"exact": share of examples with every fact right and no distractor, "fact_f1": mean F1}."""
    _check_pairs(preds, facts)
    scores = [fact_scores(p, f, d) for p, f, d in zip(preds, facts, distractors)]
    return {"exact": sum(e for e, _ in scores) / len(scores), "fact_f1": sum(f for _, f in scores) / len(scores)}


def fact_figures(preds: list[str], facts: list[list[str]], distractors: list[list[str]]) -> dict[str, float]:
    """content() as the tables print it: {"facts_exact": %, "facts_fact_f1": x100}."""
    return {f"facts_{k}": 100 * v for k, v in content(preds, facts, distractors).items()}


def _check_pairs(preds: list[str], refs: list[str]) -> None:
    if isinstance(preds, str) or isinstance(refs, str):
        raise DataError("preds and refs are lists of strings, one per example")
    if len(preds) != len(refs):
        raise DataError(f"{len(preds)} predictions but {len(refs)} references")
    if not preds:
        raise DataError("no examples to score")
