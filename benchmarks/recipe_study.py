"""Where do the students end up, and why? A recipe study on the validation split.

Each run trains one student (QAT or DQ, at W-E-A bits and encoder-decoder layers) from the shipped
teacher with one *setting* (how activations are clipped and scaled, how weights are scaled) and
one learning rate, and scores it on the first N validation examples at every evaluation (4 beams,
the demo's decoding), so one run is one learning curve. Curves live in each run's log.jsonl (the
loop's `on_eval` figures), so an interrupted run resumes (`train`'s last.ckpt) and keeps its curve.

The learning rate decays linearly to 0 at the run's last step: a point half-way along a curve is a
model in mid-schedule, not a shorter run's end. The settings:

    paper       DQ-BART: weights and activations clamped to +-2.5, TWN weights one scale per
                tensor, activation scales max|x| per tensor, dynamic
    noclip      no clamp: dynamic max|x| scales cover every activation
    calib       a clamp per site at the 99.99th percentile of |x| that site sees in the
                teacher-copied student on 8 training batches (calibrated from the teacher;
                attention probabilities keep no clamp)
    lsqact      learned activation clips (LSQ: the scale is the clip); weights as the paper's
    noclip-row  no clamp, TWN weights with one scale per output row
    noclip-lsqw no clamp, LSQ weight scales (one per tensor)
    lsq-row     LSQ weight scales per row and LSQ activation clips
    noclip-row-kl  noclip-row, with the logits term a KL divergence of the softened distributions
                instead of the MSE of raw logits (benchmarks/dq_gradient_terms.py: late in training
                the MSE's gradient is the tail of the vocabulary's, orthogonal to the task loss's)

    python benchmarks/recipe_study.py run --task summarization --method DQ --setting noclip --lr 1e-4 --steps 600
    python benchmarks/recipe_study.py report --task summarization    # table + plot of every finished run

`run` resumes a run whose folder holds last.ckpt, and does nothing for a finished one.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from minidq.data import load_split
from minidq.model import Bart
from minidq.stats import paired_bootstrap
from minidq.students import StudentRun, ship, train_student
from minidq.tasks import SAMPLES, TASKS, Scorer
from minidq.tokenizer import Tokenizer


@dataclass(frozen=True)
class Setting:
    quant: dict = field(default_factory=dict)  # QuantConfig options on top of the W-E-A bits
    calibrate: float | None = None             # percentile of |x| per activation site: its clamp
    distill: dict = field(default_factory=dict)  # DistillConfig options on top of the paper's loss (DQ runs)


SETTINGS = {
    "paper": Setting(),
    "noclip": Setting(dict(clip_val=None)),
    "calib": Setting(dict(clip_val=None), calibrate=99.99),
    "lsqact": Setting(dict(act_method="lsq")),
    "noclip-row": Setting(dict(clip_val=None, weight_per_row=True)),
    "noclip-lsqw": Setting(dict(clip_val=None, weight_method="lsq")),
    "lsq-row": Setting(dict(weight_method="lsq", weight_per_row=True, act_method="lsq")),
    "noclip-row-kl": Setting(dict(clip_val=None, weight_per_row=True), distill=dict(logits_kind="kl")),
}


def run_dir(args) -> Path:
    return (Path(args.out) / args.task / f"{args.method}-{args.quant}-{args.layers}"
            / f"{args.setting}-lr{args.lr:g}-steps{args.steps}-seed{args.seed}")


def student_run(args) -> StudentRun:
    setting = SETTINGS[args.setting]
    return StudentRun(args.task, args.method, args.quant, args.layers, setting.quant, setting.calibrate, args.lr,
                      args.steps, args.eval_every, args.seed, args.batch_size, args.valid_examples, setting.distill)


def cmd_run(args) -> None:
    torch.set_num_threads(args.threads)
    figures = train_student(student_run(args), run_dir(args), settings={"setting": args.setting})
    print(json.dumps({"out": str(run_dir(args)), **figures}))


def cmd_ship(args) -> None:
    """A finished run's student into data_samples/TASK/students/ (minidq.students.ship)."""
    command = (f"python benchmarks/recipe_study.py run --task {args.task} --method {args.method} --quant {args.quant} "
               f"--layers {args.layers} --setting {args.setting} --lr {args.lr:g} --steps {args.steps} "
               f"--eval-every {args.eval_every} --seed {args.seed}")
    dest = Path(args.students or SAMPLES / TASKS[args.task].name / "students")
    print(ship(student_run(args), run_dir(args), dest, command))


def curves(task: str, out: str) -> list[dict]:
    """Every run of the task: its names and its evaluations [(step, key metric, file of predictions)]."""
    found = []
    for log in sorted(Path(out, task).glob("*/*/log.jsonl")):
        evals = [r for r in map(json.loads, log.read_text().splitlines()) if "val_loss" in r]
        student, name = log.parent.parent.name, log.parent.name
        found.append({"student": student, "run": name, "dir": log.parent, "evals": evals,
                      "done": (log.parent / "done.json").is_file()})
    return found


def cmd_report(args) -> None:
    task = TASKS[args.task]
    runs = curves(args.task, args.out)
    if not runs:
        raise SystemExit(f"no runs under {args.out}/{args.task}")
    data_dir = SAMPLES / task.name
    key = "bleu" if task.metric == "bleu" else "facts_exact"
    lines = [f"### {args.task}: validation, first {args.valid_examples} examples, 4 beams; {key} at each evaluation",
             "", "| student | setting | evaluations (step: score) | last | best val loss |", "|---|---|---|---|---|"]
    for r in runs:
        points = ", ".join(f"{e['step']}: {e.get(key, float('nan')):.1f}" for e in r["evals"])
        last = f"{r['evals'][-1].get(key, float('nan')):.1f}" if r["evals"] else "-"
        best = min((e["val_loss"] for e in r["evals"]), default=float("nan"))
        lines.append(f"| {r['student']} | {r['run']}{'' if r['done'] else ' (running)'} | {points} | {last} | "
                     f"{best:.3f} |")
    # paired intervals of each finished run's last evaluation against the paper setting's, same student
    valid_ex = load_split(data_dir, "valid")[: args.valid_examples]
    scorer = Scorer.for_examples(task, valid_ex, data_dir, "valid")
    lines += ["", "Last evaluation against the paper setting at the same student and steps, at the same lr where "
                  "there is such a run, else at the paper's own lr 5e-4 (paired bootstrap 95% interval, 1000 "
                  "resamples):", ""]
    for r in runs:
        same_lr = "paper-lr" + r["run"].split("-lr", 1)[1]
        own_lr = "paper-lr0.0005-steps" + r["run"].split("-steps", 1)[1]
        base = next((b for name in (same_lr, own_lr) for b in runs
                     if b["student"] == r["student"] and b["run"] == name), None)
        if base is None or base is r or not (r["done"] and base["done"]):
            continue
        a, b = (json.loads(sorted(x["dir"].glob("preds_*.json"))[-1].read_text()) for x in (r, base))
        iv = paired_bootstrap(scorer.per_index(a), scorer.per_index(b), len(a), 1000, 0)
        lines.append(f"- {r['student']} {r['run']} - {base['run']}: {iv}")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(args.write).write_text(text)
        plot(runs, key, args.task, Path(args.write).with_suffix(".png"))


def cmd_compare(args) -> None:
    """Run a minus run b, paired over the same examples: on validation at every evaluation both
    have (their saved predictions), and on test from their packed students (--test-a/--test-b),
    with, on the fact tasks, how each does where the teacher is right and where it is wrong."""
    from minidq.evaluate import predict
    from minidq.export import load_packed, load_packed_tokenizer

    task = TASKS[args.task]
    data_dir = SAMPLES / task.name
    runs = [Path(args.out, args.task, name) for name in (args.a, args.b)]
    valid = load_split(data_dir, "valid")[: args.valid_examples]
    scorer = Scorer.for_examples(task, valid, data_dir, "valid")
    steps = sorted({p.name for p in runs[0].glob("preds_*.json")} & {p.name for p in runs[1].glob("preds_*.json")})
    print(f"{args.task}: {args.a} - {args.b} ({scorer.key()}, paired bootstrap 95%, 1000 resamples)")
    for name in steps:
        a, b = (scorer.per_index(json.loads((run / name).read_text())) for run in runs)
        print(f"  validation, step {int(name[6:12])}: {paired_bootstrap(a, b, len(valid), 1000, 0)}")
    if (args.test_a and args.test_b) or args.test_unpacked:
        test = load_split(data_dir, "test")[: args.test_examples]
        scorer = Scorer.for_examples(task, test, data_dir, "test")
        models = ([(Bart.from_pretrained(run / "best"), Tokenizer.from_pretrained(run / "best")) for run in runs]
                  if args.test_unpacked else  # fake-quantized, as validation scores them: what packing changes
                  [(load_packed(path), load_packed_tokenizer(path)) for path in (args.test_a, args.test_b)])
        if scorer.facts:  # the teacher too, to see whose mistakes each student makes
            teacher_dir = data_dir / "teacher"
            models.append((Bart.from_pretrained(teacher_dir), Tokenizer.from_pretrained(teacher_dir)))
        preds = [predict(model, tokenizer, scorer.sources, batch_size=32, progress=False, num_beams=4,
                         max_length=task.max_length, early_stopping=True) for model, tokenizer in models]
        figures = [scorer.figures(p)[scorer.key()] for p in preds]
        score = [scorer.per_index(p) for p in preds]
        print(f"  test, first {len(test)}: {figures[0]:.1f} - {figures[1]:.1f} = "
              f"{paired_bootstrap(score[0], score[1], len(test), 1000, 0)}")
        if scorer.facts:
            for name, s in (("a", score[0]), ("b", score[1])):
                print(f"  {name} - teacher: {paired_bootstrap(s, score[2], len(test), 1000, 0)}")
            print(teacher_breakdown(scorer, preds[2], {"a": preds[0], "b": preds[1]}))


def teacher_breakdown(scorer: Scorer, teacher: list[str], students: dict[str, list[str]]) -> str:
    """Does a student lose by copying its teacher's mistakes, or on examples the teacher gets right?
    Each student's facts-right count among the examples the teacher gets wrong and among those it
    gets right, and how many of its outputs are the teacher's word for word."""
    t = [v == 100 for v in scorer.per_example(teacher)]
    lines = [f"  teacher: right on {sum(t)} of {len(t)} test examples, wrong on {len(t) - sum(t)}"]
    for name, preds in students.items():
        s = [v == 100 for v in scorer.per_example(preds)]
        lines.append(f"  {name}: right on {sum(x for x, y in zip(s, t) if not y)} of the teacher's {len(t) - sum(t)} "
                     f"wrong, {sum(x for x, y in zip(s, t) if y)} of its {sum(t)} right; "
                     f"{sum(p == q for p, q in zip(preds, teacher))} outputs identical to the teacher's")
    return "\n".join(lines)


def plot(runs: list[dict], key: str, task: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    students = sorted({r["student"] for r in runs})
    fig, axes = plt.subplots(1, len(students), figsize=(6 * len(students), 4.2), squeeze=False)
    for ax, student in zip(axes[0], students):
        for r in runs:
            if r["student"] == student and r["evals"]:
                ax.plot([e["step"] for e in r["evals"]], [e.get(key) for e in r["evals"]], marker="o", label=r["run"])
        ax.set_title(f"{task}: {student}")
        ax.set_xlabel("training step (batch 16)")
        ax.set_ylabel(f"{key} (validation)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_run_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """What names one run (the same flags for `run` and for `ship`)."""
    p.add_argument("--task", choices=sorted(TASKS), default="summarization")
    p.add_argument("--method", choices=("DQ", "QAT"), default="DQ")
    p.add_argument("--quant", default="2-2-8")
    p.add_argument("--layers", default="6-6")
    p.add_argument("--setting", choices=sorted(SETTINGS), default="paper")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--eval-every", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--valid-examples", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/study")
    p.add_argument("--students", help="ship: the folder to write into (default: data_samples/TASK/students)")
    return p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, func, text in (("run", cmd_run, "train one student with one setting, scoring validation at each evaluation"),
                             ("ship", cmd_ship, "pack a finished run's student into data_samples/TASK/students/")):
        add_run_args(sub.add_parser(name, help=text)).set_defaults(func=func)
    p = sub.add_parser("compare", help="run a minus run b, paired: validation at each evaluation, test if given")
    p.add_argument("--task", choices=sorted(TASKS), default="summarization")
    p.add_argument("--a", required=True, help="STUDENT/RUN under --out/TASK, e.g. DQ-2-2-8-6-6/noclip-row-lr0.0001-...")
    p.add_argument("--b", required=True)
    p.add_argument("--test-a", help="run a's packed student, to compare on test too")
    p.add_argument("--test-b", help="run b's packed student")
    p.add_argument("--valid-examples", type=int, default=200)
    p.add_argument("--test-unpacked", action="store_true",
                   help="compare on test the runs' best/ checkpoints (fake-quantized) instead of packed students")
    p.add_argument("--test-examples", type=int, default=200)
    p.add_argument("--out", default="runs/study")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("report", help="table (and with --write, a plot) of every run of a task")
    p.add_argument("--task", choices=sorted(TASKS), default="summarization")
    p.add_argument("--valid-examples", type=int, default=200)
    p.add_argument("--out", default="runs/study")
    p.add_argument("--write", help="write the table here (and the plot beside it, .png)")
    p.set_defaults(func=cmd_report)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
