"""minidq.metrics against the reference implementations (rouge-score, sacrebleu), test-only oracles."""

import random

import pytest

from minidq.metrics import bleu, rouge, rouge_scores, tokenize_13a

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
sacrebleu = pytest.importorskip("sacrebleu")

# a small vocabulary so that random texts overlap and repeat; punctuation, digits, unicode
WORDS = ["the", "The", "cat", "cats", "sat", "on", "mat", "a", "dog", "dog", "dog", "ran",
         "3.5", "1,000", "5-4", "U.S.", "don't", "state-of-the-art", "café", "naïve", "Straße",
         "İstanbul", "東京", "😀", "x", "42", "(a)", "&amp;", "&quot;hi&quot;", "...", "!", "?",
         ",", ".", "—", "--", "e-mail", "C++", "$5", "50%", "A", "b"]


def random_text(rng: random.Random, max_words: int = 25, newlines: bool = False) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(0, max_words))]
    seps = [rng.choice([" ", " ", " ", "  ", "\n"] if newlines else [" ", " ", "  ", "\t"])
            for _ in words]
    return "".join(w + s for w, s in zip(words, seps)).strip(" ") if rng.random() < 0.9 else ""


def random_pairs(seed: int, n: int, newlines: bool = False) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = [(random_text(rng, newlines=newlines), random_text(rng, newlines=newlines))
             for _ in range(n)]
    # near-copies, so that high scores and long LCSs are exercised too
    for _ in range(n // 4):
        ref = random_text(rng, newlines=newlines)
        words = ref.split(" ")
        rng.shuffle(words[: len(words) // 2])
        pairs.append((" ".join(words[::-1] if rng.random() < 0.2 else words), ref))
    return pairs + [("", ""), ("", "a b"), ("a b", ""), ("...", "!!!"), ("a a a a", "a")]


@pytest.mark.parametrize("newlines", [False, True])
def test_rouge_matches_rouge_score(newlines):
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=False)
    pairs = random_pairs(seed=int(newlines), n=300, newlines=newlines)
    for pred, ref in pairs:
        ours, theirs = rouge_scores(pred, ref), scorer.score(ref, pred)
        for key, s in theirs.items():
            got = (ours[key].precision, ours[key].recall, ours[key].f1)
            want = (s.precision, s.recall, s.fmeasure)
            assert got == pytest.approx(want, abs=1e-6), (key, pred, ref)
    corpus = rouge([p for p, _ in pairs], [r for _, r in pairs])
    for key in corpus:
        mean = sum(scorer.score(r, p)[key].fmeasure for p, r in pairs) / len(pairs)
        assert corpus[key] == pytest.approx(mean, abs=1e-6)


def test_rouge_lsum_unions_lcs_over_sentences():
    # "a b" matches the first predicted sentence, "c d" the second: Lsum credits both,
    # while plain ROUGE-L over the flattened text sees them in the wrong order
    scores = rouge_scores("c d\na b", "a b\nc d")
    assert scores["rougeLsum"].f1 == pytest.approx(1.0)
    assert scores["rougeL"].f1 == pytest.approx(0.5)


def test_rouge_simple_values():
    scores = rouge(["the cat sat"], ["the cat ran"])
    assert scores["rouge1"] == pytest.approx(2 / 3)
    assert scores["rouge2"] == pytest.approx(1 / 2)
    assert rouge([""], [""])["rougeL"] == 0.0


def corpora():
    rng = random.Random(7)
    sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 30))) for _ in range(60)]
    noisy = [" ".join(w for w in s.split() if rng.random() < 0.8) for s in sents]
    return {
        "random": (noisy, sents),
        "perfect": (sents, sents),
        "no_overlap": (["zzz yyy xxx www vvv"] * 5, ["aaa bbb ccc ddd eee"] * 5),
        "short_hyps": ([s.split()[0] + " " + s.split()[1] for s in sents], sents),
        "too_short_for_4grams": (["a b c", "d e"], ["a b c d", "d e f"]),
        "longer_hyps": ([s + " " + s for s in sents], sents),
        "some_empty": (["", "the cat sat on the mat", ""], ["a b", "the cat sat on a mat", "x"]),
        "no_4gram_match": (["the cat sat on a mat"], ["the cat sat in a mat"]),
        "trailing_space_and_entities": (["Hello , world !  ", "&quot;yes&quot; 5-4"],
                                        ["Hello, world!", '"yes" 5 - 4']),
    }


@pytest.mark.parametrize("name", list(corpora()))
def test_bleu_matches_sacrebleu(name):
    preds, refs = corpora()[name]
    want = sacrebleu.corpus_bleu(preds, [refs]).score
    assert bleu(preds, refs) == pytest.approx(want, abs=0.01)


def test_tokenize_13a_matches_sacrebleu():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    theirs = Tokenizer13a()
    rng = random.Random(3)
    for _ in range(300):
        line = random_text(rng)
        assert tokenize_13a(line) == theirs(line.rstrip()).split(), line


def test_bleu_edges():
    assert bleu(["a b c d e"], ["a b c d e"]) == pytest.approx(100.0)
    assert bleu(["zzz"], ["a b c d"]) == 0.0
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        bleu(["a", "b"], ["a"])


def test_chrf_matches_sacrebleu():
    from minidq.metrics import chrf

    for seed in range(3):
        pairs = random_pairs(seed, 60)
        preds, refs = [p for p, _ in pairs], [r for _, r in pairs]
        assert chrf(preds, refs) == pytest.approx(sacrebleu.corpus_chrf(preds, [refs]).score, abs=1e-6)
    ro = ["Câinele negru a văzut pisica.", "Nu car un copac negru în piața mare."]
    hyp = ["Câinii negri au văzut pisica.", "Nu car copacul negru în piață."]
    assert chrf(hyp, ro) == pytest.approx(sacrebleu.corpus_chrf(hyp, [ro]).score, abs=1e-6)
    assert chrf(["a"], ["bcd"]) == 0.0 == sacrebleu.corpus_chrf(["a"], [["bcd"]]).score


def test_facts_are_whole_words_any_case():
    from minidq.metrics import mentions

    assert mentions("Chairman Ada Lo said on July 1.", "chairman")
    assert mentions("It will buy Nadobail-based X for $245 million.", "Nadobail")
    assert mentions("It will buy X for $245 million.", "$245 million")
    assert not mentions("said on July 12.", "July 1")
    assert not mentions("opened 1,634 stores", "634")


def test_content_score_counts_facts_and_distractors():
    from minidq.metrics import content, fact_scores

    facts, distractors = ["Acme Group", "cut", "300", "Nadobail"], ["Rival Labs", "Thokrouth"]
    assert fact_scores("Acme Group will cut 300 jobs in Nadobail.", facts, distractors) == (True, 1.0)
    # the rival instead of the company: one fact missing (recall 3/4), one distractor (precision 3/4)
    exact, f1 = fact_scores("Rival Labs will cut 300 jobs in Nadobail.", facts, distractors)
    assert not exact and f1 == pytest.approx(0.75)
    # every fact, plus a distractor: not exact, precision 4/5
    exact, f1 = fact_scores("Acme Group will cut 300 jobs in Nadobail and Thokrouth.", facts, distractors)
    assert not exact and f1 == pytest.approx(2 * 0.8 / 1.8)
    scores = content(["Acme Group will cut 300 jobs in Nadobail.", ""], [facts, facts], [distractors] * 2)
    assert scores == {"exact": 0.5, "fact_f1": 0.5}
