"""Execute the lesson notebooks in place, so the repository stores them with their outputs.

    python lessons/run_all.py                      # every lesson, in order
    python lessons/run_all.py 10_dq_bart.ipynb     # one of them

Each notebook runs top to bottom in a fresh kernel from the lessons/ folder, as a reader runs
it; the time each took is printed (CI's budget is about two minutes per lesson on 2 CPU cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def main() -> None:
    names = sys.argv[1:] or sorted(p.name for p in HERE.glob("*.ipynb"))
    for name in names:
        path = HERE / Path(name).name
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
        nbformat.write(nb, path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
