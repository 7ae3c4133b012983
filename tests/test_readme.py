"""The README's ten-line Python version of the whole pipeline runs as printed (with 2 training
steps instead of 120, in a scratch folder that sees the shipped data)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_pipeline_in_the_readme_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"## The whole pipeline in Python\n\n```python\n(.*?)```", (ROOT / "README.md").read_text(),
                     re.S).group(1)
    assert "max_steps=120" in code
    (tmp_path / "data_samples").symlink_to(ROOT / "data_samples")
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("max_steps=120", "max_steps=2").replace("eval_every=120", "eval_every=2"),
                 "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.splitlines()[-1].startswith("['") and (tmp_path / "runs" / "dq.packed").stat().st_size > 100_000
