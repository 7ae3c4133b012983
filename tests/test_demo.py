"""`minidq demo --quick`: every row is built, packed, reloaded and scored; table, JSON and plot are written."""

import json

from minidq.cli import main
from minidq.demo import ROWS


def test_quick_demo_writes_the_table(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["rows"]
    assert [(r["method"], r["quant"], r["layers"]) for r in rows[1:]] == [(r.method, r.quant, r.layers) for r in ROWS]
    assert rows[0]["method"] == "teacher" and rows[0]["compression"] == 1.0
    for row in ROWS:
        assert (tmp_path / f"{row.name}.packed").is_file()
    by_name = {f"{r['method']}-{r['quant']}-{r['layers']}": r for r in rows}
    # fewer bits and fewer layers make smaller files
    assert by_name["DQ-8-8-8-6-6"]["compression"] > 3
    assert by_name["DQ-2-2-8-6-6"]["compression"] > by_name["DQ-8-8-8-6-6"]["compression"]
    assert by_name["DQ-2-2-8-6-1"]["compression"] > by_name["DQ-2-2-8-6-3"]["compression"] > \
        by_name["DQ-2-2-8-6-6"]["compression"]
    assert all(0 <= r["rougeL"] <= 100 for r in rows)
    table = (tmp_path / "results.md").read_text()
    assert table.count("\n| ") == len(ROWS) + 1 and "decoding:" in table
    assert (tmp_path / "compression_vs_rouge.png").stat().st_size > 1000
    assert "ROUGE-L % of teacher" in capsys.readouterr().out


def test_rows_can_be_chosen_and_bad_rows_are_one_line(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path), "--rows", "PTQ-2-2-8-6-6"]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["teacher", "PTQ"]
    assert main(["demo", "--quick", "--out", str(tmp_path), "--rows", "DQ-3-3-8-6-6"]) == 2  # a bad input: exit 2
    assert "unknown row(s) DQ-3-3-8-6-6" in capsys.readouterr().err
