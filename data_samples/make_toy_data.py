"""Make the toy datasets in data_samples/: rerunning this script reproduces every file byte for byte.

    python data_samples/make_toy_data.py                 # rewrite data_samples/ (seconds)
    python data_samples/make_toy_data.py --out /tmp/d --skip-tokenizer

Two tasks, both built so that a small BART trained for under an hour on a laptop CPU can learn
them, while shortcuts (such as copying an article's first words) score clearly lower:

summarization  news-like articles about invented people, companies and cities; the summary
               picks the one announced event out of background and distractor sentences,
               copies its rare names and numbers, and says it in a fixed canonical way
               ("plans to eliminate 300 positions" -> "will cut 300 jobs").
translation    English -> a small slice of Romanian grammar: nouns with gender, the definite
               article as a suffix (dog -> câine, the dog -> câinele), adjectives after the
               noun and agreeing with it, dropped subject pronouns, object clitics before the
               verb, three tenses, time adverbs moved to the front.

Everything random comes from random.Random(seed): no set or dict iteration order, no clock.
See data_samples/README.md for the resulting files and the lead baseline.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from minidq.tokenizer import Tokenizer

HERE = Path(__file__).resolve().parent
SEED = 1234
SPLITS = {"summarization": (6000, 500, 500), "qa": (6000, 500, 500),
          "translation": (8000, 500, 500)}  # train, valid, test

# =============================================================== invented names

ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p",
          "pr", "r", "s", "sh", "st", "t", "tr", "v", "w", "z", "th", "ch", "bl", "fl"]
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "ou", "ia"]
CODAS = ["", "", "", "n", "r", "l", "s", "m", "k", "th", "nd", "rt", "x"]


def invent_word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(CODAS)).capitalize()


def name_pool(rng: random.Random, size: int, syllables: tuple[int, ...], taken: set[str],
              suffixes: tuple[str, ...] = ("",)) -> list[str]:
    """`size` distinct invented names, none already in `taken` (so pools never share a name)."""
    pool = []
    while len(pool) < size:
        name = invent_word(rng, rng.choice(syllables)) + rng.choice(suffixes)
        if name not in taken and 4 <= len(name) <= 13:
            taken.add(name)
            pool.append(name)
    return pool


class Names:
    """Pools large enough that every article combines people, firms and cities in a new way,
    and rare enough words that they split into several BPE pieces: the model has to copy them,
    it cannot memorise who goes with what."""

    ORG_TYPES = ["Group", "Holdings", "Industries", "Motors", "Foods", "Energy", "Systems",
                 "Labs", "Logistics", "Bank", "Pharma", "Airlines", "Retail", "Telecom"]

    def __init__(self, rng: random.Random):
        taken: set[str] = set()
        self.first = name_pool(rng, 400, (2,), taken)
        self.last = name_pool(rng, 6000, (2, 3), taken)
        self.cities = name_pool(rng, 2000, (2, 3), taken, ("", "", "", "ville", "port", "burg", "ford"))
        self.org_stems = name_pool(rng, 2000, (2, 3), taken)

    def person(self, rng: random.Random) -> str:
        return f"{rng.choice(self.first)} {rng.choice(self.last)}"

    def org(self, rng: random.Random) -> str:
        return f"{rng.choice(self.org_stems)} {rng.choice(self.ORG_TYPES)}"

    def city(self, rng: random.Random) -> str:
        return rng.choice(self.cities)


def distinct(rng: random.Random, make: Callable[[random.Random], str], n: int) -> list[str]:
    """n different draws of make(rng), e.g. three different companies in one article."""
    out: list[str] = []
    while len(out) < n:
        x = make(rng)
        if x not in out:
            out.append(x)
    return out


# =============================================================== summarization

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


def written_date(rng: random.Random, month: str, day: int) -> str:
    """The source writes a date three ways; the summary always says "March 14"."""
    ordinal = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return rng.choice([f"{month} {day}", f"{day} {month}", f"the {day}{ordinal} of {month}"])


def count(rng: random.Random, low: int, high: int) -> str:
    return f"{rng.randint(low, high):,}"


# role in the summary -> ways the article names it
ROLES = {
    "CEO": ["chief executive", "chief executive officer", "CEO"],
    "chairman": ["chairman", "chairman of the board"],
    "CFO": ["chief financial officer", "finance director"],
    "president": ["president", "company president"],
    "spokesperson": ["spokesperson", "press officer"],
    "COO": ["chief operating officer", "head of operations"],
}

# event kind -> (things, how the article says the plan, how the summary says it).
# {n} a count, {t} the thing, {c} the city, {o} a second company (for takeovers).
EVENTS = {
    "open": (["stores", "offices", "clinics", "branches", "restaurants", "warehouses", "hotels"],
             ["plans to open {n} new {t} in {c}", "will launch {n} new {t} in {c}",
              "is set to open {n} {t} across {c}"],
             "will open {n} {t} in {c}"),
    "hire": (["workers", "engineers", "nurses", "drivers", "technicians", "programmers"],
             ["plans to recruit {n} {t} in {c}", "will take on {n} new {t} at its site in {c}",
              "is looking to add {n} {t} in {c}"],
             "will hire {n} {t} in {c}"),
    "cut": (["jobs"],
            ["plans to eliminate {n} positions in {c}", "will lay off {n} staff in {c}",
             "is shedding {n} jobs at its site in {c}"],
            "will cut {n} jobs in {c}"),
    "invest": (["a new factory", "solar farms", "a research centre", "its port terminal",
                "electric buses", "a data centre"],
               ["is putting ${n} million into {t} in {c}",
                "plans to spend {n} million dollars on {t} in {c}",
                "has committed ${n} million to {t} in {c}"],
               "will invest ${n} million in {t} in {c}"),
    "close": (["factories", "stores", "offices", "depots", "mines", "plants"],
              ["plans to shut {n} {t} in {c}", "will close {n} of its {t} in {c}",
               "is to shut down {n} {t} in {c}"],
              "will close {n} {t} in {c}"),
    "build": (["homes", "schools", "bridges", "wind turbines", "apartments", "hospitals"],
              ["plans to construct {n} {t} in {c}", "will put up {n} new {t} in {c}",
               "has won approval to build {n} {t} in {c}"],
              "will build {n} {t} in {c}"),
    "buy": ([""],
            ["agreed to acquire {o}, a company based in {c}, for ${n} million",
             "will take over {c}-based {o} in a deal worth ${n} million",
             "is buying {o} of {c} for {n} million dollars"],
            "will buy {c}-based {o} for ${n} million"),
}
COUNT_RANGES = {"open": (2, 300), "close": (2, 300), "build": (2, 900), "hire": (20, 9500),
                "cut": (20, 9500), "invest": (5, 950), "buy": (5, 950)}

# past-tense events a rival already did: same vocabulary as the key event, different tense
RIVAL_EVENTS = ["opened {n} {t} in {c}", "closed {n} {t} in {c}", "hired {n} workers in {c}",
                "cut {n} jobs in {c}", "built {n} {t} in {c}"]
RIVAL_THINGS = ["stores", "offices", "factories", "homes", "depots", "clinics"]


# The company's own figure of a year before, for every kind but takeovers: the summary says
# whether the plan is "up from" or "down from" it, which the article never says. The model
# must compare two numbers it reads, not only copy one.
PAST = {"open": "opened {m} {t}", "close": "closed {m} {t}", "build": "built {m} {t}",
        "hire": "hired {m} {t}", "cut": "cut {m} jobs", "invest": "invested ${m} million"}
PAST_SENTENCES = ["{org} {past} last year.", "Last year, {org} {past}.", "A year earlier, {org} had {past}."]
COMPARISONS = [", {d} from {m} last year", ", {d} from {m} a year earlier"]


def past_figure(rng: random.Random, kind: str, facts: dict[str, str]) -> tuple[str, str, str]:
    """(a year-earlier figure of the same kind, "up" or "down", the figure as the summary writes it)."""
    n = int(facts["n"].replace(",", ""))
    m = n
    while m == n:
        m = rng.randint(*COUNT_RANGES[kind])
    past = PAST[kind].format(m=f"{m:,}", t=facts["t"])
    return past, "up" if n > m else "down", f"${m:,} million" if kind == "invest" else f"{m:,}"


def event_sentence(rng: random.Random, org: str, date: str, news: str) -> str:
    return rng.choice([
        f"{org} said on {date} that it {news}.",
        f"On {date}, {org} announced that it {news}.",
        f"{org} {news}, the company announced on {date}.",
        f"In a statement released on {date}, {org} said it {news}.",
    ])


def person_sentence(rng: random.Random, person: str, role: str, org: str, year: int) -> str:
    return rng.choice([
        f"The plan was announced by {person}, the {role} of {org}.",
        f'"We are confident in this decision," said {person}, {org}\'s {role}.',
        f"{person}, who has been {role} of {org} since {year}, confirmed the plan.",
        f"The decision was confirmed by {org} {role} {person}.",
    ])


def plan(rng: random.Random, kind: str, city: str, org: str) -> tuple[dict[str, str], str]:
    """The facts of one event of `kind` and a sentence fragment that states them."""
    things, wordings, _ = EVENTS[kind]
    facts = {"n": count(rng, *COUNT_RANGES[kind]), "t": rng.choice(things), "c": city, "o": org}
    return facts, rng.choice(wordings).format(**facts)


# The summary is one-to-many: a phrasing and an order are drawn at random for each example, so
# a model cannot match a single reference word for word, and the teacher's spread over the valid
# phrasings is information that the one-hot reference lacks. The facts stay canonical
# (verb stem, count, thing, place, role, person, "Month day"), so a content score can check them.
VERB_FORMS = ["will {v}", "plans to {v}", "is to {v}", "is set to {v}"]
SUMMARY_FORMS = [
    "{org} {verb} {what}, {role} {person} said on {date}.",
    "On {date}, {role} {person} said that {org} {verb} {what}.",
    "{role} {person} said on {date} that {org} {verb} {what}.",
    "{org} {verb} {what}, according to {role} {person}, who spoke on {date}.",
    "According to {role} {person}, {org} {verb} {what}, as announced on {date}.",
]


def event_facts(kind: str, facts: dict[str, str]) -> list[str]:
    """The strings a summary must contain to state the event right (word-bounded, exact)."""
    verb = EVENTS[kind][2].split()[1]  # "will cut {n} jobs in {c}" -> "cut"
    if kind == "buy":
        return [verb, facts["o"], facts["c"], f"${facts['n']} million"]
    if kind == "invest":
        return [verb, f"${facts['n']} million", facts["t"], facts["c"]]
    return [verb, facts["n"], facts["t"], facts["c"]]


def article(rng: random.Random, names: Names) -> dict:
    """One article, one summary drawn from SUMMARY_FORMS x VERB_FORMS, and the facts it states.

    In half the articles (takeovers aside) the company's figure of a year before is given too,
    and the summary compares the plan with it ("up from 120 last year").

    `facts` are the strings every correct summary contains; `distractors` are names, places,
    numbers and dates the article also mentions but a correct summary does not."""
    org, target_org, rival, other, other_target, analyst_org = distinct(rng, names.org, 6)
    person, rival_person, mayor, economist = distinct(rng, names.person, 4)
    city, hq_city, rival_city, other_city, rain_city = distinct(rng, names.city, 5)
    month, day = rng.choice(MONTHS), rng.randint(1, 28)
    kind = rng.choice(sorted(EVENTS))
    facts, news = plan(rng, kind, city, target_org)
    role = rng.choice(sorted(ROLES))
    role_text, date_text = rng.choice(ROLES[role]), written_date(rng, month, day)

    other_month, other_day = rng.choice(MONTHS), rng.randint(1, 28)
    other_date = written_date(rng, other_month, other_day)
    rival_n, other_kind = count(rng, 2, 900), rng.choice(sorted(EVENTS))
    rival_news = rng.choice(RIVAL_EVENTS).format(n=rival_n, t=rng.choice(RIVAL_THINGS), c=rival_city)
    other_facts, other_news = plan(rng, other_kind, other_city, other_target)
    # sentences that may come before the news, and distractors that only make sense after it
    may_lead = [
        f"{org} was founded in {rng.randint(1950, 2015)} and employs about {count(rng, 200, 60000)} people.",
        f"{org} is based in {hq_city} and has operations in {rng.randint(3, 40)} countries.",
        f"Shares in {org} {rng.choice(['rose', 'fell'])} {rng.randint(1, 19)} percent on {other_date}.",
        f"Heavy rain is expected in {rain_city} later this week.",
        f"Analysts at {analyst_org} expect the sector to grow by {rng.randint(2, 15)} percent next year.",
        f"{economist}, an economist at {analyst_org}, said demand had been strong since {rng.randint(2005, 2020)}.",
    ]
    after_only = [
        f"Meanwhile, rival {rival} said it had {rival_news} last year.",
        f"{rival_person}, {rng.choice(ROLES[rng.choice(sorted(ROLES))])} of {rival}, declined to comment.",
        f"The mayor of {city}, {mayor}, welcomed the news.",
        f"Separately, {other} said on {other_date} that it {other_news}.",
    ]
    compare = kind != "buy" and rng.random() < 0.5
    earlier = []  # the year-earlier figure, always in the article when the summary compares
    if compare:
        past, direction, before = past_figure(rng, kind, facts)
        earlier = [rng.choice(PAST_SENTENCES).format(org=org, past=past)]
    if rng.random() < 0.3:  # the person and the news in one sentence
        key = [f"{person}, the {role_text} of {org}, said on {date_text} that the company {news}."]
    else:
        key = [event_sentence(rng, org, date_text, news),
               person_sentence(rng, person, role_text, org, rng.randint(2005, 2023))]
    lead = rng.sample(may_lead, rng.randint(0, 2))
    rest = [s for s in may_lead if s not in lead]
    tail = rng.sample(rest, rng.randint(1, 2)) + rng.sample(after_only, rng.randint(1, 3)) + earlier
    rng.shuffle(tail)
    body = lead + key[:1] + tail
    if len(key) > 1:  # the person sentence goes anywhere after the news
        body.insert(rng.randint(len(lead) + 1, len(body)), key[1])
    source = " ".join(body)

    canonical = EVENTS[kind][2].format(**facts)          # "will cut 300 jobs in Nadobail"
    verb = rng.choice(VERB_FORMS).format(v=canonical.split()[1])
    what = canonical.split(" ", 2)[2]
    if compare:
        what += rng.choice(COMPARISONS).format(d=direction, m=before)
    summary = capitalize(rng.choice(SUMMARY_FORMS).format(org=org, verb=verb, what=what,
                                                          role=role, person=person, date=f"{month} {day}"))
    gold = [org, *event_facts(kind, facts), role, person, f"{month} {day}"]
    wrong = [target_org, rival, other, other_target, analyst_org, rival_person, mayor, economist,
             hq_city, rival_city, other_city, rain_city, rival_n, other_facts["n"]]
    wrong = [w for w in wrong if bounded(w, source)]  # (a sentence left out of the article has none)
    wrong.append(f"{other_month} {other_day}")  # the other date, as a summary would write it
    if compare:  # the right figure with the wrong direction
        gold.append(f"{direction} from {before}")
        wrong.append(f"{'down' if direction == 'up' else 'up'} from {before}")
    distractors = [w for w in wrong if all(not overlaps(w, g) for g in gold)]
    return {"source": source, "target": summary, "facts": gold, "distractors": distractors}


def bounded(x: str, text: str) -> bool:
    """x occurs in text as whole words (as minidq.metrics.mentions, case aside)."""
    return re.search(rf"(?<!\w)(?<!\d,){re.escape(x)}(?!\w)(?!,\d)", text) is not None


def overlaps(a: str, b: str) -> bool:
    """True when one string occurs inside the other as whole words: such a distractor cannot
    be told apart from a fact by string matching, so it is left out."""
    return bounded(a, b) or bounded(b, a)


def make_summarization(seed: int, sizes: tuple[int, int, int]) -> dict[str, list[dict[str, str]]]:
    rng = random.Random(seed)
    names = Names(rng)
    return unique_splits(rng, lambda r: article(r, names), sizes)


def capitalize(text: str) -> str:
    return text[0].upper() + text[1:]


# =============================================================== long-form question answering
# The paper's ELI5 in miniature: a question about one town, short passages about it and about
# other towns, and a 3-5 sentence answer that gathers what the passages say about the town asked
# for, each fact restated ("is home to some 43,000 people" -> "has about 43,000 inhabitants"),
# in a random order and wording (one-to-many, like the summaries).

INDUSTRIES = ["fishing", "mining", "textiles", "tourism", "wine", "shipbuilding", "software",
              "farming", "glassmaking", "timber", "banking", "steel"]
FESTIVALS = ["lantern", "harvest", "music", "kite", "boat", "cheese", "flower", "film", "jazz", "snow"]

# fact kind -> (how a passage states it, how an answer states it); {x} the town, {v} the value
TOWN_FACTS = {
    "river": (["{x} lies on the {v} river.", "The {v} river flows through {x}.",
               "{x} was built along the banks of the {v}."],
              ["{x} lies on the {v} river.", "The {v} river runs through {x}."]),
    "people": (["{x} is home to some {v} people.", "About {v} people live in {x}.",
                "The population of {x} is roughly {v}."],
               ["{x} has about {v} inhabitants.", "Around {v} people live in {x}."]),
    "founded": (["{x} was established in {v}.", "The first settlers came to {x} in {v}.",
                 "{x} dates back to {v}."],
                ["{x} was founded in {v}.", "{x} has existed since {v}."]),
    "industry": (["The economy of {x} rests on {v}.", "Most jobs in {x} depend on {v}.",
                  "{x} grew rich from {v}."],
                 ["The main industry of {x} is {v}.", "{x} lives mainly from {v}."]),
    "mayor": (["{v} was elected mayor of {x}.", "{x} is run by its mayor, {v}.",
               "The town council of {x} is led by {v}."],
              ["The mayor of {x} is {v}.", "{x} is governed by mayor {v}."]),
    "festival": (["Every {m}, {x} celebrates its {v} festival.", "Crowds visit {x} each {m} for the {v} festival.",
                  "The {v} festival takes place in {x} every {m}."],
                 ["{x} holds a {v} festival every {m}.", "Every {m}, {x} hosts a {v} festival."]),
}
QUESTIONS = ["What is {x} like?", "What should I know about {x}?", "Can you tell me about the town of {x}?",
             "Explain what {x} is known for.", "Why do people talk about {x}?"]


def town_values(rng: random.Random, names: Names) -> dict[str, str]:
    return {"river": rng.choice(names.org_stems), "people": count(rng, 800, 95000),
            "founded": str(rng.randint(1100, 1950)), "industry": rng.choice(INDUSTRIES),
            "mayor": names.person(rng), "festival": rng.choice(FESTIVALS), "month": rng.choice(MONTHS)}


def town_sentence(rng: random.Random, kind: str, town: str, values: dict[str, str], side: int) -> str:
    """side 0: a passage's wording, side 1: an answer's."""
    return rng.choice(TOWN_FACTS[kind][side]).format(x=town, v=values[kind], m=values["month"])


def fact_strings(kind: str, values: dict[str, str]) -> list[str]:
    return [values[kind], values["month"]] if kind == "festival" else [values[kind]]


def question(rng: random.Random, names: Names) -> dict:
    """One question with 4-7 passages (2-3 about the town asked for, the rest about other towns),
    and an answer of one sentence per fact the passages give about that town (3-5 of them)."""
    town, *others = distinct(rng, names.city, 4)
    values = {t: town_values(rng, names) for t in [town, *others]}
    kinds = rng.sample(sorted(TOWN_FACTS), rng.randint(3, 5))
    # the town's facts, dealt into 2-3 passages of 1-2 sentences
    sentences = [town_sentence(rng, k, town, values[town], 0) for k in kinds]
    cuts = sorted(rng.sample(range(1, len(sentences)), min(len(sentences) - 1, rng.randint(1, 2))))
    relevant = [" ".join(sentences[a:b]) for a, b in zip([0, *cuts], [*cuts, len(sentences)])]
    distractors: list[str] = []
    irrelevant = []
    for other in others[: rng.randint(2, 3)]:
        other_kinds = rng.sample(sorted(TOWN_FACTS), rng.randint(1, 2))
        irrelevant.append(" ".join(town_sentence(rng, k, other, values[other], 0) for k in other_kinds))
        distractors += [other, *(f for k in other_kinds for f in fact_strings(k, values[other]))]
    passages = relevant + irrelevant
    rng.shuffle(passages)
    source = rng.choice(QUESTIONS).format(x=town) + " " + " ".join(
        f"Passage {i + 1}: {p}" for i, p in enumerate(passages))

    order = kinds[:]
    rng.shuffle(order)
    answer = [town_sentence(rng, k, town, values[town], 1) for k in order]
    # after the first sentence, the town may be referred to as "it" / "the town"
    for i in range(1, len(answer)):
        if answer[i].startswith(town + " ") and rng.random() < 0.5:
            answer[i] = rng.choice(["It", "The town"]) + answer[i][len(town):]
    facts = [town, *(f for k in kinds for f in fact_strings(k, values[town]))]
    distractors = [d for d in distractors if all(not overlaps(d, f) for f in facts)]
    return {"source": source, "target": " ".join(answer), "facts": facts, "distractors": distractors}


def make_qa(seed: int, sizes: tuple[int, int, int]) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    names = Names(rng)
    return unique_splits(rng, lambda r: question(r, names), sizes)


# =============================================================== translation
# A slice of real Romanian grammar, simplified (no cases besides the ones shown, no 2nd person).

# English singular, plural, gender (m/f/n), Romanian: singular, the singular, plural, the plural
NOUNS = {
    "person": [
        ("boy", "boys", "m", "băiat", "băiatul", "băieți", "băieții"),
        ("girl", "girls", "f", "fată", "fata", "fete", "fetele"),
        ("man", "men", "m", "bărbat", "bărbatul", "bărbați", "bărbații"),
        ("woman", "women", "f", "femeie", "femeia", "femei", "femeile"),
        ("teacher", "teachers", "m", "profesor", "profesorul", "profesori", "profesorii"),
        ("doctor", "doctors", "m", "doctor", "doctorul", "doctori", "doctorii"),
        ("neighbour", "neighbours", "m", "vecin", "vecinul", "vecini", "vecinii"),
        ("child", "children", "m", "copil", "copilul", "copii", "copiii"),
        ("student", "students", "m", "student", "studentul", "studenți", "studenții"),
        ("farmer", "farmers", "m", "fermier", "fermierul", "fermieri", "fermierii"),
        ("sister", "sisters", "f", "soră", "sora", "surori", "surorile"),
        ("brother", "brothers", "m", "frate", "fratele", "frați", "frații"),
    ],
    "animal": [
        ("dog", "dogs", "m", "câine", "câinele", "câini", "câinii"),
        ("cat", "cats", "f", "pisică", "pisica", "pisici", "pisicile"),
        ("horse", "horses", "m", "cal", "calul", "cai", "caii"),
        ("wolf", "wolves", "m", "lup", "lupul", "lupi", "lupii"),
        ("bird", "birds", "f", "pasăre", "pasărea", "păsări", "păsările"),
        ("cow", "cows", "f", "vacă", "vaca", "vaci", "vacile"),
    ],
    "food": [
        ("apple", "apples", "n", "măr", "mărul", "mere", "merele"),
        ("egg", "eggs", "n", "ou", "oul", "ouă", "ouăle"),
        ("cake", "cakes", "f", "prăjitură", "prăjitura", "prăjituri", "prăjiturile"),
        ("pear", "pears", "f", "pară", "para", "pere", "perele"),
        ("orange", "oranges", "f", "portocală", "portocala", "portocale", "portocalele"),
    ],
    "thing": [
        ("book", "books", "f", "carte", "cartea", "cărți", "cărțile"),
        ("letter", "letters", "f", "scrisoare", "scrisoarea", "scrisori", "scrisorile"),
        ("newspaper", "newspapers", "n", "ziar", "ziarul", "ziare", "ziarele"),
        ("chair", "chairs", "n", "scaun", "scaunul", "scaune", "scaunele"),
        ("table", "tables", "f", "masă", "masa", "mese", "mesele"),
        ("car", "cars", "f", "mașină", "mașina", "mașini", "mașinile"),
        ("door", "doors", "f", "ușă", "ușa", "uși", "ușile"),
        ("window", "windows", "f", "fereastră", "fereastra", "ferestre", "ferestrele"),
        ("painting", "paintings", "n", "tablou", "tabloul", "tablouri", "tablourile"),
        ("notebook", "notebooks", "n", "caiet", "caietul", "caiete", "caietele"),
        ("flower", "flowers", "f", "floare", "floarea", "flori", "florile"),
        ("tree", "trees", "m", "copac", "copacul", "copaci", "copacii"),
    ],
    "building": [
        ("house", "houses", "f", "casă", "casa", "case", "casele"),
        ("bridge", "bridges", "n", "pod", "podul", "poduri", "podurile"),
        ("wall", "walls", "n", "zid", "zidul", "ziduri", "zidurile"),
        ("school", "schools", "f", "școală", "școala", "școli", "școlile"),
    ],
}
# places for "in the X": English, gender, Romanian singular, the singular
PLACES = [("garden", "f", "grădină", "grădina"), ("park", "n", "parc", "parcul"),
          ("kitchen", "f", "bucătărie", "bucătăria"), ("city", "n", "oraș", "orașul"),
          ("village", "n", "sat", "satul"), ("forest", "f", "pădure", "pădurea"),
          ("market", "f", "piață", "piața")]

# English, Romanian forms by agreement (masc sg, fem sg, masc pl, fem pl), kinds of noun it suits
ADJECTIVES = [
    ("big", ("mare", "mare", "mari", "mari"), "person animal thing building"),
    ("small", ("mic", "mică", "mici", "mici"), "person animal food thing building"),
    ("good", ("bun", "bună", "buni", "bune"), "person animal food thing"),
    ("beautiful", ("frumos", "frumoasă", "frumoși", "frumoase"), "person animal thing building"),
    ("old", ("bătrân", "bătrână", "bătrâni", "bătrâne"), "person animal"),  # old of the living...
    ("old", ("vechi", "veche", "vechi", "vechi"), "thing building"),  # ...and of things: two words
    ("new", ("nou", "nouă", "noi", "noi"), "thing building"),
    ("young", ("tânăr", "tânără", "tineri", "tinere"), "person animal"),
    ("happy", ("fericit", "fericită", "fericiți", "fericite"), "person animal"),
    ("tall", ("înalt", "înaltă", "înalți", "înalte"), "person building"),
    ("black", ("negru", "neagră", "negri", "negre"), "animal thing"),
    ("white", ("alb", "albă", "albi", "albe"), "animal thing building"),
    ("red", ("roșu", "roșie", "roșii", "roșii"), "food thing building"),
    ("green", ("verde", "verde", "verzi", "verzi"), "food thing"),
    ("fresh", ("proaspăt", "proaspătă", "proaspeți", "proaspete"), "food"),
]
PLACE_ADJECTIVES = [a for a in ADJECTIVES if a[0] in ("big", "small", "beautiful", "new", "old")
                    and "building" in a[2].split()]
# determiner: Romanian forms by agreement like adjectives (None: the noun's own form decides)
POSSESSIVES = {"my": ("meu", "mea", "mei", "mele"), "our": ("nostru", "noastră", "noștri", "noastre")}
DEMONSTRATIVES = {"this": ("acest", "această", "", ""), "these": ("", "", "acești", "aceste"),
                  "that": ("acel", "acea", "", ""), "those": ("", "", "acei", "acele")}
NUMBERS = {"two": "doi/două", "three": "trei", "four": "patru", "five": "cinci", "six": "șase",
           "seven": "șapte", "eight": "opt", "nine": "nouă", "ten": "zece"}

# English base, 3rd sg, past; Romanian infinitive, present (I, he/she, we, they), participle;
# the kinds of object it takes; whether animals can be its subject
VERBS = [
    ("see", "sees", "saw", "vedea", ("văd", "vede", "vedem", "văd"), "văzut", "person animal thing building", True),
    ("find", "finds", "found", "găsi", ("găsesc", "găsește", "găsim", "găsesc"), "găsit", "person animal thing food", True),
    ("eat", "eats", "ate", "mânca", ("mănânc", "mănâncă", "mâncăm", "mănâncă"), "mâncat", "food", True),
    ("buy", "buys", "bought", "cumpăra", ("cumpăr", "cumpără", "cumpărăm", "cumpără"), "cumpărat", "food thing animal building", False),
    ("sell", "sells", "sold", "vinde", ("vând", "vinde", "vindem", "vând"), "vândut", "food thing animal building", False),
    ("love", "loves", "loved", "iubi", ("iubesc", "iubește", "iubim", "iubesc"), "iubit", "person animal", True),
    ("help", "helps", "helped", "ajuta", ("ajut", "ajută", "ajutăm", "ajută"), "ajutat", "person animal", False),
    ("call", "calls", "called", "chema", ("chem", "cheamă", "chemăm", "cheamă"), "chemat", "person animal", False),
    ("wash", "washes", "washed", "spăla", ("spăl", "spală", "spălăm", "spală"), "spălat", "animal thing", False),
    ("build", "builds", "built", "construi", ("construiesc", "construiește", "construim", "construiesc"), "construit", "building thing", False),
    ("draw", "draws", "drew", "desena", ("desenez", "desenează", "desenăm", "desenează"), "desenat", "person animal thing building food", False),
    ("carry", "carries", "carried", "căra", ("car", "cară", "cărăm", "cară"), "cărat", "food thing", False),
    ("clean", "cleans", "cleaned", "curăța", ("curăț", "curăță", "curățăm", "curăță"), "curățat", "thing building", False),
]
# subject pronouns: English, person index into the verb tables, Romanian. Romanian may drop the
# pronoun (the verb ending says who) or keep it: both are right, so references draw one at random.
PRONOUNS = [("I", 0, "eu"), ("he", 1, "el"), ("she", 1, "ea"), ("we", 2, "noi"), ("they", 3, "ei")]
# The future has two right forms: "voi vedea" and the spoken "o să văd" (o să + subjunctive, whose
# 1st persons are the present's: o să văd, o să vedem; 3rd persons below: o să vadă).
SUBJUNCTIVE_3 = {"vedea": "vadă", "găsi": "găsească", "mânca": "mănânce", "cumpăra": "cumpere",
                 "vinde": "vândă", "iubi": "iubească", "ajuta": "ajute", "chema": "cheme", "spăla": "spele",
                 "construi": "construiască", "desena": "deseneze", "căra": "care", "curăța": "curețe"}
BE_DO = {0: "do", 1: "does", 2: "do", 3: "do"}
PAST_AUX, FUTURE_AUX = ("am", "a", "am", "au"), ("voi", "va", "vom", "vor")
# object pronouns: clitic before a present/future verb, before the past auxiliary, after the participle
CLITICS = {"him": ("îl", "l-", ""), "her": ("o", "", "-o")}
# Romanian has more than one right answer: "azi" or "astăzi", the adverb first or last
TIMES = {"present": [("every day", "în fiecare zi/zilnic"), ("today", "azi/astăzi")],
         "past": [("yesterday", "ieri"), ("last week", "săptămâna trecută")],
         "future": [("tomorrow", "mâine"), ("next week", "săptămâna viitoare")]}
CONJUNCTIONS = [("and", "și"), ("but", "dar/însă")]


def agreement(gender: str, plural: bool) -> int:
    """Index into (masc sg, fem sg, masc pl, fem pl). Romanian neuters are masculine in the
    singular and feminine in the plural."""
    feminine = gender == "f" or (gender == "n" and plural)
    return 2 * plural + feminine


def noun_phrase(rng: random.Random, kinds: str, allow_plural: bool = True) -> tuple[str, str, bool]:
    """A random noun phrase of one of `kinds`: (English, Romanian, is plural)."""
    kind = rng.choice(kinds.split())
    en_sg, en_pl, gender, ro_sg, ro_def, ro_pl, ro_pl_def = rng.choice(NOUNS[kind])
    plural = allow_plural and rng.random() < 0.4
    adjs = [a for a in ADJECTIVES if kind in a[2].split()]
    adj = rng.choice(adjs) if rng.random() < 0.5 else None
    agr = agreement(gender, plural)
    en_noun = en_pl if plural else en_sg
    en_adj = f"{adj[0]} " if adj else ""
    ro_adj = f" {adj[1][agr]}" if adj else ""
    det = rng.choice(["the", "numeral", "bare", "my", "our", "these", "those"] if plural
                     else ["the", "the", "a", "my", "our", "this", "that"])
    if det == "the":
        return f"the {en_adj}{en_noun}", f"{ro_pl_def if plural else ro_def}{ro_adj}", plural
    if det == "a":
        article = "an" if (en_adj or en_noun)[0] in "aeiou" else "a"
        return f"{article} {en_adj}{en_noun}", f"{'o' if gender == 'f' else 'un'} {ro_sg}{ro_adj}", False
    if det == "numeral":
        en_num, ro_num = rng.choice(sorted(NUMBERS.items()))
        ro_num = ro_num.split("/")[agr == 3] if "/" in ro_num else ro_num  # doi câini, două case
        return f"{en_num} {en_adj}{en_noun}", f"{ro_num} {ro_pl}{ro_adj}", True
    if det == "bare":
        return f"{en_adj}{en_noun}", f"{ro_pl}{ro_adj}", True
    if det in POSSESSIVES:  # the dog of mine: câinele meu
        return (f"{det} {en_adj}{en_noun}",
                f"{ro_pl_def if plural else ro_def} {POSSESSIVES[det][agr]}{ro_adj}", plural)
    return f"{det} {en_adj}{en_noun}", f"{DEMONSTRATIVES[det][agr]} {ro_pl if plural else ro_sg}{ro_adj}", plural


def clause(rng: random.Random) -> tuple[list[str], list[str]]:
    """One clause: subject [not] verb object [in/with ...] [time] -> Romanian word order (words)."""
    en_base, en_3sg, en_past, ro_inf, ro_present, ro_part, objects, animal_subject = rng.choice(VERBS)
    tense = rng.choice(["present", "past", "future"])
    negated = rng.random() < 0.2
    if rng.random() < 0.35:
        en_subj, person, ro_pronoun = rng.choice(PRONOUNS)
        ro_subj = ro_pronoun if rng.random() < 0.5 else ""
    else:
        en_subj, ro_subj, plural = noun_phrase(rng, "person animal" if animal_subject else "person")
        person = 3 if plural else 1
    third_sg = person == 1
    clitic = None
    if "person" in objects and rng.random() < 0.2:
        en_obj, clitic = rng.choice(sorted(CLITICS.items()))
        ro_obj = ""
    else:
        en_obj, ro_obj, _ = noun_phrase(rng, objects)
    # the verb group
    if tense == "present":
        en_verb = f"{BE_DO[person]} not {en_base}" if negated else (en_3sg if third_sg else en_base)
        ro_verb = f"{clitic[0]} {ro_present[person]}" if clitic else ro_present[person]
    elif tense == "past":
        en_verb = f"did not {en_base}" if negated else en_past
        aux = PAST_AUX[person]
        ro_verb = f"{clitic[1]}{aux} {ro_part}{clitic[2]}" if clitic else f"{aux} {ro_part}"
    else:
        en_verb = f"will not {en_base}" if negated else f"will {en_base}"
        pronoun = f"{clitic[0]} " if clitic else ""
        if rng.random() < 0.5:
            ro_verb = f"{pronoun}{FUTURE_AUX[person]} {ro_inf}"  # îl voi vedea
        else:
            subjunctive = ro_present[person] if person in (0, 2) else SUBJUNCTIVE_3[ro_inf]
            ro_verb = f"o să {pronoun}{subjunctive}"  # o să îl văd
    if negated:
        ro_verb = f"nu {ro_verb}"
    en, ro = [en_subj, en_verb, en_obj], [ro_subj, ro_verb, ro_obj]
    extra = rng.random()
    if extra < 0.15:  # in the garden: no article after "în" unless an adjective follows
        place, gender, ro_sg, ro_def = rng.choice(PLACES)
        adj = rng.choice(PLACE_ADJECTIVES) if rng.random() < 0.4 else None
        en.append(f"in the {adj[0]} {place}" if adj else f"in the {place}")
        ro.append(f"în {ro_def} {adj[1][agreement(gender, False)]}" if adj else f"în {ro_sg}")
    elif extra < 0.3:
        en_with, ro_with, _ = noun_phrase(rng, "person animal")
        en.append(f"with {en_with}")
        ro.append(f"cu {ro_with}")
    if rng.random() < 0.3:  # time adverbs end the English sentence and mostly open the Romanian one
        en_time, ro_time = rng.choice(TIMES[tense])
        en.append(en_time)
        ro_time = rng.choice(ro_time.split("/"))
        ro.insert(0, ro_time) if rng.random() < 0.7 else ro.append(ro_time)
    return en, ro


def translation_pair(rng: random.Random) -> dict[str, str]:
    """One clause, or two joined by "and" / "but" (a third of the time)."""
    en, ro = clause(rng)
    if rng.random() < 0.35:
        (en_and, ro_and), (en2, ro2) = rng.choice(CONJUNCTIONS), clause(rng)
        ro_and = rng.choice(ro_and.split("/"))
        en, ro = en + [f", {en_and}"] + en2, ro + [f", {ro_and}"] + ro2
    return {"source": sentence(en), "target": sentence(ro)}


def sentence(words: list[str]) -> str:
    text = " ".join(w for w in words if w).replace(" ,", ",")
    return text[0].upper() + text[1:] + "."


def make_translation(seed: int, sizes: tuple[int, int, int]) -> dict[str, list[dict[str, str]]]:
    rng = random.Random(seed)
    return unique_splits(rng, translation_pair, sizes)


# =============================================================== splits, files, tokenizers


def unique_splits(rng: random.Random, make, sizes: tuple[int, int, int]) -> dict[str, list[dict[str, str]]]:
    """Draw examples until each split is full, never repeating a source anywhere, so that
    valid/test measure generalisation rather than recall."""
    seen: set[str] = set()
    splits: dict[str, list[dict[str, str]]] = {}
    for split, size in zip(("train", "valid", "test"), sizes):
        splits[split] = []
        while len(splits[split]) < size:
            example = make(rng)
            if example["source"] not in seen:
                seen.add(example["source"])
                splits[split].append(example)
    return splits


def write_jsonl(path: Path, examples: list[dict]) -> None:
    """source and target first, then the facts and distractors the content score checks (if any)."""
    lines = (json.dumps(e, ensure_ascii=False) for e in examples)
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def train_tokenizer(task_dir: Path, examples: list[dict[str, str]], vocab_size: int,
                    specials: list[str]) -> Tokenizer:
    """Byte-level BPE on the training split only (source and target: encoder and decoder share it)."""
    sys.path.insert(0, str(HERE.parent))
    from minidq.tokenizer import Tokenizer

    texts = [t for e in examples for t in (e["source"], e["target"])]
    tok = Tokenizer.train(texts, vocab_size=vocab_size)
    if specials:  # mBART's language codes: sources end `</s> en_XX`, targets `</s> ro_RO`
        tok.add_special_tokens(specials)
        tok.set_languages(*specials)
    tok.save_pretrained(task_dir)
    return tok


def describe(task: str, splits: dict[str, list[dict[str, str]]], task_dir: Path,
             tok: Tokenizer | None) -> None:
    """Print the figures data_samples/README.md quotes (token counts only with a tokenizer)."""
    train_words = {w for e in splits["train"] for text in (e["source"], e["target"]) for w in text.split()}
    for split, examples in splits.items():
        src = [len(e["source"].split()) for e in examples]
        tgt = [len(e["target"].split()) for e in examples]
        size = (task_dir / f"{split}.jsonl").stat().st_size
        print(f"{task:>13} {split:<5} {len(examples):5d} pairs  source words {min(src)}-{max(src)} "
              f"(mean {sum(src) / len(src):.0f})  target words {min(tgt)}-{max(tgt)} "
              f"(mean {sum(tgt) / len(tgt):.0f})  {size / 1e6:.2f} MB")
    test_words = [w for e in splits["test"] for w in e["target"].split()]
    unseen = sum(w not in train_words for w in test_words) / len(test_words)
    print(f"{task:>13} {100 * unseen:.1f}% of the words in test targets never occur in train")
    if tok is not None:
        longest = {side: max(len(tok.encode(e[side])) for ex in splits.values() for e in ex)
                   for side in ("source", "target")}
        print(f"{task:>13} tokenizer: {tok.vocab_size} tokens; longest source {longest['source']} "
              f"tokens, longest target {longest['target']} (with <s> and </s>)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for summarization/ and translation/")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--skip-tokenizer", action="store_true", help="write only the JSONL files")
    args = parser.parse_args()
    tasks = {
        "summarization": (make_summarization, 4000, []),
        "qa": (make_qa, 4000, []),
        "translation": (make_translation, 2500, ["en_XX", "ro_RO"]),  # mBART language codes
    }
    for task, (make, vocab_size, specials) in tasks.items():
        task_dir = args.out / task
        task_dir.mkdir(parents=True, exist_ok=True)
        splits = make(args.seed, SPLITS[task])
        for split, examples in splits.items():
            write_jsonl(task_dir / f"{split}.jsonl", examples)
        tok = None if args.skip_tokenizer else train_tokenizer(task_dir, splits["train"], vocab_size, specials)
        describe(task, splits, task_dir, tok)


if __name__ == "__main__":
    main()
