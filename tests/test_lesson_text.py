"""The lessons as a reader finds them: exercises to write, prose true to the outputs, short cells."""

import importlib
import json
import re
import sys
from pathlib import Path

import pytest

LESSONS_DIR = Path(__file__).parent.parent / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("*.ipynb"))
# a number the prose states as a result: written with a decimal point, or followed by % or x
STATED = re.compile(r"(?<![\w.-])(\d+(?:\.\d+)?)(?:\s?%|x\b)|(?<![\w.])(\d+\.\d+)(?![\w.])")


def cells(notebook: Path, kind: str) -> list[dict]:
    return [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == kind]


def text_of(cell: dict) -> str:
    return "".join(cell["source"])


def outputs_of(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   + "".join(o.get("data", {}).get("text/markdown", "")) for o in cell.get("outputs", []))


@pytest.mark.parametrize("notebook", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_number_the_prose_states_is_one_its_cells_compute_or_write(notebook):
    """A figure in the prose (12.5x, 78.5%, 0.643) must appear in a code cell's source (a paper
    figure set beside the toy one) or stored output: prose cannot drift from what the cells show."""
    code = "".join(text_of(c) + outputs_of(c) for c in cells(notebook, "code"))
    stated = [a or b for c in cells(notebook, "markdown")
              for a, b in STATED.findall(re.sub(r"`[^`]*`", "", text_of(c)))]
    assert [n for n in stated if n not in code] == []


@pytest.mark.parametrize("notebook", LESSONS, ids=[p.stem for p in LESSONS])
def test_cells_are_short_and_store_no_progress_bars(notebook):
    code = cells(notebook, "code")
    assert max(len(text_of(c).splitlines()) for c in code) <= 40
    assert not any(re.search(r"\d+it/s|s/it\]|\r", outputs_of(c)) for c in code)


@pytest.mark.parametrize("notebook", LESSONS, ids=[p.stem for p in LESSONS])
def test_exercises_are_stubs_checked_by_a_lessons_check(notebook):
    """Each exercise is a stub the learner fills (it raises NotImplementedError) and `attempt`
    checks; no cell imports the solutions."""
    code = [text_of(c) for c in cells(notebook, "code")]
    assert not any(re.search(r"^\s*(from|import) solutions", src, re.M) for src in code)
    stubs = sum(src.count("raise NotImplementedError") for src in code)
    attempts = sum(len(re.findall(r"\battempt\(", src)) for src in code)
    assert stubs >= 1 and attempts >= 1


def test_every_check_is_shown_to_reject_a_wrong_answer():
    """Every check in lessons/checks/lesson_NN.py is fed at least one plausible wrong answer in
    tests/test_exercises_NN.py (which asserts that the check fails on it)."""
    sys.path.insert(0, str(LESSONS_DIR))
    modules = sorted((LESSONS_DIR / "checks").glob("lesson_*.py"))
    assert len(modules) == len(LESSONS)
    untested = []
    for module in modules:
        test = Path(__file__).parent / f"test_exercises_{module.stem.removeprefix('lesson_')}.py"
        text = test.read_text() if test.is_file() else ""
        names = [n for n in dir(importlib.import_module(f"checks.{module.stem}")) if n.startswith("check_")]
        assert names, f"{module.name}: no check_ functions"
        untested += [f"{module.stem}.{n}" for n in names if not re.search(rf"\b{n}\b", text)]
    assert untested == []
