"""`minidq demo --quick`: every row is built, packed, reloaded and scored; tables, claims, bands and plots are written."""

import json

from minidq.cli import main
from minidq.demo import ROWS


def test_quick_demo_writes_the_summarization_table(tmp_path, capsys):
    rows_arg = ",".join(r.name for r in ROWS)
    assert main(["demo", "--quick", "--task", "summarization", "--rows", rows_arg, "--no-shipped", "--out",
                 str(tmp_path)]) == 0
    results = json.loads((tmp_path / "summarization" / "results.json").read_text())
    rows = results["rows"]
    assert [(r["method"], r["quant"], r["layers"]) for r in rows[1:]] == [(r.method, r.quant, r.layers) for r in ROWS]
    assert rows[0]["method"] == "teacher" and rows[0]["compression"] == 1.0
    for row in ROWS:
        assert (tmp_path / "summarization" / f"{row.name}.packed").is_file()
    by_name = {f"{r['method']}-{r['quant']}-{r['layers']}": r for r in rows}
    # fewer bits and fewer layers make smaller files
    assert by_name["DQ-8-8-8-6-6"]["compression"] > 3
    assert by_name["DQ-2-2-8-6-6"]["compression"] > by_name["DQ-8-8-8-6-6"]["compression"]
    assert by_name["DQ-2-2-8-6-1"]["compression"] > by_name["DQ-2-2-8-6-3"]["compression"] > \
        by_name["DQ-2-2-8-6-6"]["compression"]
    assert all(0 <= r["rougeL"] <= 100 and 0 <= r["facts_exact"] <= 100 for r in rows)
    assert results["key"] == "facts_exact" and results["lead_30"]["rougeL"] > 0
    # each claim is a difference with its interval, each band a yes/no
    assert {c["b"] for c in results["claims"]} == {"teacher", "QAT-2-2-8-6-6", "DQ-2-2-8-6-6"}
    assert all(c["low"] <= c["diff"] <= c["high"] for c in results["claims"])
    assert len(results["bands"]) == 4 and all(isinstance(b["holds"], bool) for b in results["bands"])
    table = (tmp_path / "summarization" / "results.md").read_text()
    assert table.count("\n| ") == len(ROWS) + 2 and "decoding:" in table and "Claims" in table  # header, teacher, rows
    assert (tmp_path / "summarization" / "compression_vs_facts_exact.png").stat().st_size > 1000
    assert "% of teacher (facts right %)" in capsys.readouterr().out
    assert "### summarization" in (tmp_path / "results.md").read_text()


def test_translation_and_qa_tables(tmp_path):
    """The mBART task scores BLEU and chrF; QA scores facts; both write their own folder."""
    assert main(["demo", "--quick", "--task", "translation", "--rows", "PTQ-2-2-8-6-6", "--no-shipped",
                 "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "translation" / "results.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["teacher", "PTQ"]
    assert all(0 <= r["bleu"] <= 100 and 0 <= r["chrf"] <= 100 for r in rows)
    assert main(["demo", "--quick", "--task", "qa", "--rows", "PTQ-2-2-8-6-6", "--no-shipped",
                 "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "qa" / "results.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["teacher", "PTQ"] and "facts_fact_f1" in rows[0]
    # the two runs add up to one overview: a line per row, a column per task (QA's before translation's)
    together = (tmp_path / "results.md").read_text().split("### qa")[0]
    ptq = next(line for line in together.splitlines() if line.startswith("| PTQ |")).split(" | ")
    assert ptq[4] == "paper"  # its quantizers are DQ-BART's (the +-2.5 clamp, one scale per tensor)
    qa_cell, translation_cell = ptq[5], ptq[6].rstrip(" |")
    assert qa_cell.startswith(f"{rows[1]['facts_exact']:.1f} (") and translation_cell.endswith("x)")
    assert "| qa: facts right % (% of teacher, compression) | translation: BLEU" in together
    assert together.count("\n| teacher |") == 1


def test_bad_rows_and_tasks_are_one_line(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path), "--rows", "DQ-3-3-8-6-6"]) == 2  # a bad input: exit 2
    assert "unknown row(s) DQ-3-3-8-6-6" in capsys.readouterr().err


def test_quick_variants_compare_each_with_plain_dq(tmp_path):
    """`demo --variants`: the teacher decodes the training sources once (sequence-level KD data),
    and every variant row gets a claim against plain DQ at its own bits and layers."""
    from minidq.demo import VARIANT_ROWS
    from minidq.variants import VARIANTS

    rows = [r for r in VARIANT_ROWS if r.layers == "6-3"]
    assert main(["demo", "--quick", "--variants", "--task", "summarization", "--out", str(tmp_path),
                 "--rows", ",".join(r.name for r in rows)]) == 0
    results = json.loads((tmp_path / "summarization" / "results.json").read_text())
    assert [r["method"] for r in results["rows"]] == ["teacher", "DQ", *VARIANTS]
    (path,) = (tmp_path / "summarization").glob("seqkd_train.*.jsonl")  # named by the teacher's hash
    seqkd = [json.loads(line) for line in path.open()]
    assert len(seqkd) == results["config"]["train_examples"] == 2 * 4  # steps x batch of the quick run
    variant_claims = [c for c in results["claims"] if c["b"] == "DQ-2-2-8-6-3" and c["a"] != "DQ-2-2-8-6-6"]
    assert {c["a"] for c in variant_claims} == {r.name for r in rows if r.method != "DQ"}
    assert all(c["low"] <= c["diff"] <= c["high"] for c in variant_claims)


def test_rows_in_worker_processes_score_as_in_one(tmp_path):
    """`--workers 2` spreads the rows over two processes; each row is seeded on its own, so the
    table is the same as the one built row after row in this process."""
    rows = "QAT-2-2-8-6-6,DQ-2-2-8-6-3"
    tables = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        assert main(["demo", "--quick", "--task", "summarization", "--rows", rows, "--workers", str(workers),
                     "--no-shipped", "--out", str(out)]) == 0
        tables[workers] = [json.loads(line) for line in (out / "summarization" / "predictions.jsonl").open()]
        results = json.loads((out / "summarization" / "results.json").read_text())
        assert [r["method"] for r in results["rows"]] == ["teacher", "QAT", "DQ"]
    assert tables[1] == tables[2]


def test_shipped_students_are_scored_beside_the_rows_trained_here_and_full_retrains_them(tmp_path, monkeypatch):
    """A student shipped in data_samples/TASK/students/ (here: a copy of the samples folder with a
    few examples, and a student trained on them for 2 steps) is a row of the table, scored from its
    packed file, with the paper's claims made for the shipped rows too; `--full` trains it again
    from its record and scores the same figures."""
    import shutil

    from minidq import demo, students
    from minidq.tasks import SAMPLES

    task = tmp_path / "samples" / "summarization"
    shutil.copytree(SAMPLES / "summarization" / "teacher", task / "teacher")
    for split, n in (("train", 8), ("valid", 2), ("test", 2)):
        lines = (SAMPLES / "summarization" / f"{split}.jsonl").read_text().splitlines()[:n]
        (task / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    run = students.StudentRun("summarization", "DQ", "2-2-8", "1-1", lr=1e-4, steps=2, eval_every=2, batch_size=4,
                              valid_examples=2)
    students.train_student(run, tmp_path / "run", teacher_dir=task / "teacher", data_dir=task)
    students.ship(run, tmp_path / "run", task / "students", command="(test)")
    monkeypatch.setattr(demo, "SAMPLES", tmp_path / "samples")
    tables = {}
    for flags in ([], ["--full"], ["--no-shipped"]):
        out = tmp_path / ("out" + "".join(flags))
        assert main(["demo", "--quick", "--task", "summarization", "--rows", "DQ-2-2-8-6-3", *flags, "--out",
                     str(out)]) == 0
        tables[tuple(flags)] = json.loads((out / "summarization" / "results.json").read_text())["rows"]
    shipped_row, retrained_row = tables[()][1], tables[("--full",)][1]
    assert [r["row"] for r in tables[()]] == ["teacher", "shipped:DQ-2-2-8-1-1", "DQ-2-2-8-6-3"]
    assert shipped_row["trained"] == "2 steps (shipped)" and tables[()][2]["trained"] == "2 steps (here)"
    assert "| DQ | 2-2-8 | 1-1 | 2 steps (shipped) | its own |" in (tmp_path / "out" / "summarization" / "results.md").read_text()
    assert retrained_row["trained"] == "2 steps (retrained)"
    assert (tmp_path / "out--full" / "summarization" / "students" / "DQ-2-2-8-1-1.packed").is_file()
    assert {k: v for k, v in retrained_row.items() if k != "trained"} == \
        {k: v for k, v in shipped_row.items() if k != "trained"}  # the same figures, retrained
    assert [r["row"] for r in tables[("--no-shipped",)]] == ["teacher", "DQ-2-2-8-6-3"]


def test_by_default_shipped_students_stand_for_their_rows_but_ptq_and_the_key_pair_still_train():
    from minidq.demo import DEFAULT_ROWS, DemoConfig, live_rows

    assert live_rows(DemoConfig(), []) == DEFAULT_ROWS  # nothing shipped: the whole table trains here
    shipped = ["DQ-2-2-8-6-1", "DQ-2-2-8-6-6", "DQ-8-8-8-6-6", "QAT-2-2-8-6-6"]
    assert live_rows(DemoConfig(), shipped) == ("PTQ-2-2-8-6-6", "QAT-2-2-8-6-6", "DQ-2-2-8-6-6", "DQ-2-2-8-6-3")
    assert live_rows(DemoConfig(rows=("DQ-8-8-8-6-6",)), shipped) == ("DQ-8-8-8-6-6",)  # asked for: trained here
