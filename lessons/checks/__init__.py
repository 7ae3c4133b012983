"""The lessons' exercise checks, one module per lesson (checks/lesson_07.py, ...).

An exercise is a stub in the notebook that raises NotImplementedError; the learner replaces its
body. `attempt` runs the exercise's check on the learner's answer, or, while it is still the stub,
on the answer in lessons/solutions/ (so every notebook runs top to bottom, in CI too). A check is
a function of the answer made of asserts: tests/test_exercise_checks.py feeds each check a
plausible wrong answer and shows that it fails.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def attempt(check: Callable[[Any], None], yours: Any, lesson: str) -> Any:
    """check(yours); while yours raises NotImplementedError, check the solution of the same name in
    lessons/solutions/LESSON.py instead. Returns the answer that passed, for the cells after it."""
    name = yours.__name__
    try:
        check(yours)
    except NotImplementedError:
        solution = getattr(importlib.import_module(f"solutions.{lesson}"), name)
        check(solution)
        print(f"{name}: not written yet (the stub raises NotImplementedError); "
              f"lessons/solutions/{lesson}.py's passes the check")
        return solution
    print(f"{name}: yours passes the check")
    return yours
