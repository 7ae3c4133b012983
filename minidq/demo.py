"""`make demo`: the paper's results tables, reproduced on the three toy tasks from the shipped teachers.

For each task (summarization, long-form QA, en->ro translation with mBART) and each row: build
the student (teacher layers copied), quantize it, train it where the row trains (the same number
of steps for every trained row), write it packed in real low-bit form, load the packed file back,
and score that reloaded model on the test split.

    PTQ  2-2-8  6-6   quantize the teacher, no training
    QAT  2-2-8  6-6   quantization-aware training, task loss only
    DQ   8-8-8  6-6   joint distillation and quantization (task loss + distillation terms)
    DQ   2-2-8  6-6
    DQ   2-2-8  6-3   fewer decoder layers (6-1 on request)

Each task's key metric: for summarization and QA the share of test examples whose output
states every fact right (the references are one-to-many, so ROUGE against one drawn phrasing
mixes up phrasing with content; ROUGE is reported beside it); for translation BLEU (chrF beside
it). The paper's claims are checked with paired bootstrap intervals (minidq.stats), and the
bands that make a task worth running (a teacher that is good but not perfect, QAT clearly below
it) are printed as holding or not.

The table's full-budget rows are the students shipped in data_samples/TASK/students/ (trained by
minidq.students for 1500 steps, each with its command, seed and log), loaded from their packed
files and scored as a user would: most with minidq's recipe, and the key pair and DQ 6-3 with the
paper's too (rows "-paper"; minidq.recipes says what differs), so each row's recipe is a column.
Trained here, at the demo's budget (120 steps, the paper's recipe), are PTQ, the key pair (QAT and
DQ at 2-2-8 6-6: the method visibly runs) and each of the rows above that no shipped student stands
for; `--rows` trains the rows it names instead. `--full` trains every shipped
student again from its record first and scores those: the shipped rows, reproduced (hours on a CPU).

`--variants` runs, instead, the rows beyond the paper (minidq.variants: sequence-level KD, learned
quantizer scales, a KL logits term), each against plain DQ at 2-2-8 6-6 and 6-3 on the same budget.

Writes, per task, results.md, results.json and a plot into OUT/TASK/, and all tables into OUT/results.md.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path

import torch

from .config import ConfigError
from .data import Batches, load_split, make_batches
from .distill import DistillConfig, DistillLoss, make_student, parse_layers
from .evaluate import predict
from .export import footprint, load_packed, save_packed
from .heads import prune_least_important
from .model import Bart
from .quant import QuantConfig, quantize
from .recipes import recipe_of
from .stats import paired_bootstrap
from .students import StudentRun, ship, shipped, train_student
from .tasks import SAMPLES, TASKS, Scorer, Task
from .tokenizer import Tokenizer
from .train import TrainConfig, task_loss, train
from .variants import PRUNE_BATCHES, SETTINGS, VARIANTS, seqkd_examples, seqkd_path

@dataclass(frozen=True)
class Row:
    method: str   # "PTQ" (no training), "QAT" (task loss only) or "DQ" (task + distillation)
    quant: str    # W-E-A bits
    layers: str   # encoder-decoder layers of the student

    @property
    def name(self) -> str:
        return f"{self.method}-{self.quant}-{self.layers}"


ROWS = [Row("PTQ", "2-2-8", "6-6"), Row("QAT", "2-2-8", "6-6"), Row("DQ", "8-8-8", "6-6"),
        Row("DQ", "2-2-8", "6-6"), Row("DQ", "2-2-8", "6-3"), Row("DQ", "2-2-8", "6-1")]
DEFAULT_ROWS = tuple(r.name for r in ROWS[:5])
# trained here even where a shipped student stands for them: the key pair (does distillation add to
# quantization?) so the method visibly runs, and PTQ (no training: what the training buys)
ALWAYS_LIVE = ("PTQ-2-2-8-6-6", "QAT-2-2-8-6-6", "DQ-2-2-8-6-6")
# `--variants`: plain DQ and each variant, at each setting (minidq.variants)
VARIANT_ROWS = [Row(method, quant, layers) for quant, layers in SETTINGS for method in ("DQ", *VARIANTS)]
ALL_ROWS = ROWS + [r for r in VARIANT_ROWS if r not in ROWS]
SHIPPED = "shipped:"  # the prefix of a shipped student's row: "shipped:DQ-2-2-8-6-6"


@dataclass
class DemoConfig:
    tasks: tuple[str, ...] = tuple(TASKS)
    teacher: str | None = None     # default: data_samples/TASK/teacher
    data: str | None = None        # default: data_samples/TASK
    out: str = "runs/demo"
    rows: tuple[str, ...] | None = None  # the rows trained here; None: the paper's table, every row a shipped
                                         # student stands for read from it, the rest and ALWAYS_LIVE trained
    steps: int = 120               # optimizer steps for every trained row (an equal budget)
    batch_size: int = 16
    lr: float = 5e-4
    warmup_steps: int = 10
    distill: DistillConfig = field(default_factory=DistillConfig)
    train_examples: int = 0        # 0 = the whole training split
    seqkd_data: str | None = None  # the teacher's outputs for the training sources (SeqKD rows);
                                   # default: OUT/TASK/seqkd_train.<teacher hash>.jsonl, decoded once
    valid_examples: int = 64       # validation loss at the end of each run
    test_examples: int = 200       # the first N of the scored split (0 = all)
    split: str = "test"            # the scored split: "test" for the tables, "valid" for tuning (benchmarks/)
    num_beams: int = 4
    max_source_length: int = 256
    bootstrap: int = 1000          # paired bootstrap resamples for the claims
    seed: int = 0
    device: str = "cpu"
    workers: int = 0               # processes training rows side by side, one thread each (0 = one per
                                   # CPU core); on a GPU, 1
    progress: bool = True          # training progress bars (off in worker processes)
    shipped: bool = True           # also score the students shipped in data_samples/TASK/students/ (trained
                                   # to a full budget, minidq.students) as rows "shipped:ROW", unless the
                                   # teacher or the data are the user's
    full: bool = False             # retrain each shipped student from its record first (hours), and score
                                   # the retrained ones in their place: the shipped table, reproduced

    @classmethod
    def quick(cls, **overrides) -> "DemoConfig":
        """A seconds-long run of every row, for the tests: it checks the plumbing, not the figures."""
        return cls(**{**dict(steps=2, batch_size=4, train_examples=16, valid_examples=4, test_examples=4,
                             num_beams=1, bootstrap=20, workers=1), **overrides})


def build_row(row: Row, teacher: Bart, tokenizer: Tokenizer, batches: dict[str, Batches], valid, cfg: DemoConfig,
              run_dir: Path) -> Bart:
    """The student of one row, quantized and (unless PTQ) trained."""
    encoder_layers, decoder_layers = parse_layers(row.layers)
    student = make_student(teacher, encoder_layers, decoder_layers)
    variant = VARIANTS.get(row.method)
    if variant and variant.prune_heads:
        prune_least_important(student, islice(batches["train"].epoch(0), PRUNE_BATCHES), task_loss,
                              variant.prune_heads)
    quantize(student, QuantConfig.parse(row.quant, **(variant.quant if variant else {})))
    if row.method == "PTQ":
        return student
    if variant and variant.distill is None:  # sequence-level KD alone: the task loss on the teacher's outputs
        loss_fn = task_loss
    elif variant:
        loss_fn = DistillLoss(teacher, replace(cfg.distill, **variant.distill),
                              pruned_heads=student.config.pruned_attention_heads)
    else:
        loss_fn = DistillLoss(teacher, cfg.distill) if row.method == "DQ" else task_loss
    train_cfg = TrainConfig(out_dir=str(run_dir), max_steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                            warmup_steps=cfg.warmup_steps, eval_every=cfg.steps, eval_examples=0,
                            log_every=max(1, cfg.steps // 30), seed=cfg.seed, device=cfg.device,
                            progress=cfg.progress)
    train_batches = batches["seqkd"] if variant and variant.seqkd else batches["train"]
    train(student, tokenizer, train_batches, batches["valid"], valid, train_cfg, loss_fn=loss_fn, overwrite=True)
    return student


@dataclass
class Context:
    """What every row of one task needs: the teacher, its tokenizer, the batches, the scorer.
    Built once in the main process and once in each worker process."""
    task: Task
    cfg: DemoConfig
    teacher_dir: Path
    teacher: Bart
    tokenizer: Tokenizer
    batches: dict[str, Batches]
    valid: list
    scorer: Scorer
    decoding: dict
    out: Path

    def score(self, model: Bart) -> tuple[dict, list[str]]:
        preds = predict(model, self.tokenizer, self.scorer.sources, batch_size=32,
                        max_source_length=self.cfg.max_source_length, progress=False, **self.decoding)
        return self.scorer.figures(preds), preds


def prepare(task: Task, cfg: DemoConfig) -> Context:
    teacher_dir = Path(cfg.teacher or SAMPLES / task.name / "teacher")
    data_dir = Path(cfg.data or SAMPLES / task.name)
    out = Path(cfg.out) / task.name
    out.mkdir(parents=True, exist_ok=True)
    teacher = Bart.from_pretrained(teacher_dir).to(cfg.device)
    tokenizer = Tokenizer.from_pretrained(teacher_dir)
    splits = {s: load_split(data_dir, s) for s in ("train", "valid", "test")}
    valid_ex = splits["valid"][: cfg.valid_examples]
    test_ex = splits[cfg.split][: cfg.test_examples or None]
    train_ex = splits["train"][: cfg.train_examples or None]
    decoding = dict(num_beams=cfg.num_beams, max_length=task.max_length, early_stopping=True)
    sets = {"train": train_ex, "valid": valid_ex}
    if any(VARIANTS[r.method].seqkd for r in ALL_ROWS if r.name in (cfg.rows or ()) and r.method in VARIANTS):
        path = Path(cfg.seqkd_data) if cfg.seqkd_data else seqkd_path(out, teacher_dir)
        sets["seqkd"] = seqkd_examples(teacher, tokenizer, train_ex, path, cfg.max_source_length, **decoding)
    batches = {name: make_batches(ex, tokenizer, cfg.max_source_length, task.max_target_length, cfg.batch_size,
                                  tokenizer.pad_token_id, shuffle=name != "valid", seed=cfg.seed, where=name)
               for name, ex in sets.items()}
    scorer = Scorer.for_examples(task, test_ex, data_dir, cfg.split)
    return Context(task, cfg, teacher_dir, teacher, tokenizer, batches, valid_ex, scorer, decoding, out)


def score_row(ctx: Context, name: str) -> tuple[dict, list[str]]:
    """One row of the table ("teacher" or a Row's name): built, packed, reloaded and scored.
    Seeded here, so a row's figures do not depend on which rows ran before it, or where."""
    torch.manual_seed(ctx.cfg.seed)
    if name.startswith(SHIPPED):  # loaded from its packed file and scored as a user would
        packed, record = shipped(students_dir(ctx.task, ctx.cfg))[name.removeprefix(SHIPPED)]
        run = record["run"]
        figures, preds = ctx.score(load_packed(packed).to(ctx.cfg.device))
        return {"method": run["method"], "quant": run["quant"], "layers": run["layers"],
                "bytes": footprint(packed).model_bytes, **figures, "train_s": 0.0,
                "trained": f"{run['steps']} steps ({'retrained' if ctx.cfg.full else 'shipped'})",
                "recipe": StudentRun(**run).recipe or "its own"}, preds
    if name == "teacher":
        figures, preds = ctx.score(ctx.teacher)
        layers = f"{ctx.teacher.config.encoder_layers}-{ctx.teacher.config.decoder_layers}"
        bytes_ = (ctx.teacher_dir / "model.safetensors").stat().st_size
        return {"method": "teacher", "quant": "32-32-32", "layers": layers, "bytes": bytes_, **figures,
                "train_s": 0.0, "trained": "the teacher", "recipe": "-"}, preds
    row = next(r for r in ALL_ROWS if r.name == name)
    variant = VARIANTS.get(row.method)
    start = time.perf_counter()
    student = build_row(row, ctx.teacher, ctx.tokenizer, ctx.batches, ctx.valid, ctx.cfg, ctx.out / row.name)
    train_s = time.perf_counter() - start
    packed = ctx.out / f"{row.name}.packed"
    save_packed(student.cpu(), packed, ctx.tokenizer)
    figures, preds = ctx.score(load_packed(packed).to(ctx.cfg.device))
    return {"method": row.method, "quant": row.quant, "layers": row.layers,
            "bytes": footprint(packed).model_bytes,  # the file less its embedded tokenizer
            **figures, "train_s": train_s, "trained": f"{ctx.cfg.steps} steps (here)" if row.method != "PTQ" else "-",
            "recipe": recipe_of(variant.quant if variant else {}, ctx.cfg.lr) or "its own"}, preds


def students_dir(task: Task, cfg: DemoConfig) -> Path:
    """Where the task's full-budget students are read from: shipped, or retrained by --full."""
    return Path(cfg.out) / task.name / "students" if cfg.full else SAMPLES / task.name / "students"


def retrain_shipped(task: Task, cfg: DemoConfig) -> None:
    """`--full`: each shipped student trained again from its record (its run's settings, the same
    code path, minidq.students) and shipped into OUT/TASK/students/; a run already done is reused."""
    for row, (_, record) in shipped(SAMPLES / task.name / "students").items():
        run = StudentRun(**record["run"])
        print(f"retraining {row}: {record['command']}", flush=True)
        train_student(run, Path(cfg.out) / task.name / "full" / row, teacher_dir=SAMPLES / task.name / "teacher",
                      data_dir=SAMPLES / task.name)
        ship(run, Path(cfg.out) / task.name / "full" / row, students_dir(task, cfg), record["command"])


_WORKER_CONTEXT: dict[str, Context] = {}  # a worker process's Context, built on its first row


def _worker_row(task_name: str, cfg: DemoConfig, name: str) -> tuple[dict, list[str]]:
    if task_name not in _WORKER_CONTEXT:
        torch.set_num_threads(1)  # one process per core: threads of their own would fight
        _WORKER_CONTEXT.clear()
        _WORKER_CONTEXT[task_name] = prepare(TASKS[task_name], cfg)
    return score_row(_WORKER_CONTEXT[task_name], name)


def _cost(name: str) -> int:
    """A row's training time, roughly: none for the teacher and PTQ; the student's layers, twice
    over where a teacher runs beside it (distillation)."""
    row = next((r for r in ALL_ROWS if r.name == name), None)
    if row is None or row.method == "PTQ":
        return 0
    return sum(parse_layers(row.layers)) * (1 if row.method == "QAT" else 2)


def score_rows(ctx: Context, names: list[str]) -> dict[str, tuple[dict, list[str]]]:
    """Every row, in this process or spread over `cfg.workers` processes (each row is
    independent and seeded, so the figures are the same either way; the times are per process)."""
    workers = min(ctx.cfg.workers or os.cpu_count() or 1, len(names)) if ctx.cfg.device == "cpu" else 1
    if workers <= 1:
        done = {}
        for name in names:
            done[name] = score_row(ctx, name)
            print(_line(done[name][0]), flush=True)
        return done
    order = sorted(names, key=_cost, reverse=True)  # longest first: no process is left alone with a long row
    cfg = replace(ctx.cfg, progress=False)
    done = {}
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no OpenMP state inherited through fork
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        futures = {pool.submit(_worker_row, ctx.task.name, cfg, name): name for name in order}
        for future in concurrent.futures.as_completed(futures):
            done[futures[future]] = future.result()
            print(_line(done[futures[future]][0]), flush=True)
    return done


def run_task(task: Task, cfg: DemoConfig) -> dict:
    """One task's table: every row built, packed, reloaded and scored; claims and bands checked."""
    task_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    ctx = prepare(task, cfg)
    out, scorer = ctx.out, ctx.scorer
    n_test, n_train = len(scorer.sources), len(ctx.batches["train"].pairs)
    teacher_bytes = (ctx.teacher_dir / "model.safetensors").stat().st_size
    print(f"\n== {task.name}: teacher {ctx.teacher_dir} ({teacher_bytes / 2**20:.2f} MiB fp32); "
          f"scored: {n_test} {cfg.split} examples")
    lead = None
    if task.metric == "facts":  # what "learned nothing" scores: the first 30 words of the source
        lead = scorer.figures([" ".join(s.split()[:30]) for s in scorer.sources])
        print("lead-30 baseline: " + _figures_text(lead))
    own = cfg.teacher is not None or cfg.data is not None  # the shipped students belong to the shipped teachers
    if cfg.full and cfg.shipped and not own:
        retrain_shipped(task, cfg)
    full_budget = sorted(shipped(students_dir(task, cfg))) if cfg.shipped and not own else []
    live = live_rows(cfg, full_budget)
    names = ["teacher"] + [SHIPPED + row for row in full_budget] + [row.name for row in ALL_ROWS if row.name in live]
    done = score_rows(ctx, names)
    results = [{"row": name, **done[name][0]} for name in names]
    predictions = {name: done[name][1] for name in names}
    layers = results[0]["layers"]
    key = scorer.key()
    for r in results:
        r["compression"] = teacher_bytes / r["bytes"]
        r["pct_teacher"] = 100 * r[key] / results[0][key] if results[0][key] else 0.0
    claims = check_claims(predictions, scorer, n_test, cfg.bootstrap, cfg.seed, layers)
    bands = check_bands(task, results, lead)
    drawn_from = f" from the first {n_train} of the training split" if cfg.train_examples else ""
    caption = (f"{cfg.split.capitalize()} split, first {n_test} examples; decoding: {cfg.num_beams} beams, max_length "
               f"{task.max_length}, length_penalty 1.0, early stopping. Each trained row: {cfg.steps} steps of "
               f"{cfg.batch_size} examples{drawn_from}, lr {cfg.lr}, distillation {cfg.distill.reduction}-reduced. "
               f"Sizes are the packed files (2-bit codes, fp16 norms/biases/positions, tokenizer not counted); "
               f"compression is against the teacher's fp32 model.safetensors.")
    if lead:
        caption += " Lead-30 baseline (first 30 words of the source): " + _figures_text(lead) + "."
    caption += f" This table took {time.perf_counter() - task_start:.0f} s to make."
    summary = {"task": task.name, "key": key, "caption": caption, "lead_30": lead, "rows": results,
               "claims": claims, "bands": bands}
    (out / "results.json").write_text(json.dumps({"config": asdict(cfg), **summary}, indent=2) + "\n")
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as f:  # for a look at what each row wrote
        for i, ref in enumerate(scorer.refs):
            f.write(json.dumps({"reference": ref, **{k: v[i] for k, v in predictions.items()}}, ensure_ascii=False) + "\n")
    (out / "results.md").write_text(markdown(summary))
    plot(results, key, task.name, out / f"compression_vs_{key}.png")
    print("\n" + markdown(summary))
    return summary


def live_rows(cfg: DemoConfig, full_budget: list[str]) -> tuple[str, ...]:
    """The rows trained here: those asked for; by default the paper's rows that no shipped student
    stands for, and ALWAYS_LIVE. As students are shipped, the demo trains less."""
    if cfg.rows is not None:
        return cfg.rows
    return tuple(name for name in DEFAULT_ROWS if name in ALWAYS_LIVE or name not in full_budget)


def check_claims(predictions: dict[str, list[str]], scorer: Scorer, n: int, resamples: int, seed: int,
                 layers: str) -> list[dict]:
    """The paper's claims on this task, each as a difference with its paired bootstrap interval.

    "About as good" is an equivalence claim: it holds when the whole 95% interval lies above
    -margin (margin: 5% of the teacher's score, at least 2 points), fails when the whole interval
    lies below it, and is undecided otherwise. "Better" / "worse" hold when the interval excludes 0
    on the claimed side."""
    score = {name: scorer.per_index(preds) for name, preds in predictions.items()}
    margin = max(2.0, 0.05 * score["teacher"](range(n)))
    comparisons = []  # (claim, a, b, kind): the paper's claims for the rows trained here, then for the shipped ones
    for prefix, said in (("", ""), (SHIPPED, " (shipped students)")):
        fewer = next((prefix + name for name in ("DQ-2-2-8-6-3", "DQ-2-2-8-6-1") if prefix + name in score), None)
        dq = prefix + "DQ-2-2-8-" + layers
        comparisons += [
            ("8-8-8 is about as good as the teacher" + said, prefix + "DQ-8-8-8-" + layers, "teacher", "close"),
            ("2-2-8 with distillation is about as good as the teacher" + said, dq, "teacher", "close"),
            ("distillation + quantization beats quantization alone (2-2-8)" + said, dq,
             prefix + "QAT-2-2-8-" + layers, "better"),
            ("fewer decoder layers cost quality" + said, fewer, dq, "worse"),
        ]
    comparisons.append(("minidq's recipe beats the paper's (DQ 2-2-8, shipped students)", SHIPPED + "DQ-2-2-8-" + layers,
                        SHIPPED + "DQ-2-2-8-" + layers + "-paper", "better"))
    comparisons += [(f"{r.method} {'is about as good as' if VARIANTS[r.method].claim == 'close' else 'beats'} plain DQ "
                     f"({r.quant} {r.layers})", r.name, f"DQ-{r.quant}-{r.layers}", VARIANTS[r.method].claim)
                    for r in VARIANT_ROWS if r.method in VARIANTS]
    claims = []
    for text, a, b, kind in comparisons:
        if a not in score or b not in score:
            continue
        iv = paired_bootstrap(score[a], score[b], n, resamples, seed)
        if kind == "close":
            verdict = ("holds" if iv.low > -margin else "does not hold" if iv.high < -margin
                       else f"undecided (the interval allows a loss of more than {margin:.1f})")
        else:
            right_side = iv.diff > 0 if kind == "better" else iv.diff < 0
            verdict = ("holds" if iv.significant and right_side else "does not hold" if iv.significant
                       else "no difference at this sample size")
        claims.append({"claim": text, "a": a, "b": b, "diff": iv.diff, "low": iv.low, "high": iv.high,
                       "verdict": verdict})
    return claims


def check_bands(task: Task, results: list[dict], lead: dict | None) -> list[dict]:
    """Is the task worth running? A good but imperfect teacher, and QAT clearly below it."""
    rows = {r["row"]: r for r in results}
    teacher = rows["teacher"]
    qat = next((r for name, r in rows.items() if name.startswith("QAT-2-2-8")), None)
    bands = []
    if task.metric == "bleu":
        bands.append(("teacher BLEU well below 100 (<= 85)", teacher["bleu"] <= 85))
    elif "facts_exact" in teacher:
        bands.append(("teacher states every fact in >= 90% of examples", teacher["facts_exact"] >= 90))
        bands.append(("teacher ROUGE-L <= 85 (one-to-many references)", teacher["rougeL"] <= 85))
        if lead:
            bands.append(("teacher ROUGE-L >= lead-30 + 20", teacher["rougeL"] >= lead["rougeL"] + 20))
        if qat:
            bands.append(("QAT 2-2-8 at least 5 points below the teacher on facts",
                          qat["facts_exact"] <= teacher["facts_exact"] - 5))
    return [{"band": text, "holds": bool(ok)} for text, ok in bands]


COLUMNS = {"facts_exact": "facts right %", "facts_fact_f1": "fact F1", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2",
           "rougeL": "ROUGE-L", "bleu": "BLEU", "chrf": "chrF"}


def markdown(summary: dict) -> str:
    rows = summary["rows"]
    metrics = [k for k in COLUMNS if k in rows[0]]
    head = ["method", "W-E-A", "layers", "trained", "recipe", "size (MiB)", "compression", *[COLUMNS[k] for k in metrics],
            f"% of teacher ({COLUMNS[summary['key']]})", "train time (s)"]
    lines = [f"### {summary['task']}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["method"], r["quant"], r["layers"], r["trained"], r["recipe"], f"{r['bytes'] / 2**20:.2f}", f"{r['compression']:.1f}x",
                 *[f"{r[k]:.1f}" for k in metrics], f"{r['pct_teacher']:.1f}", f"{r['train_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", summary["caption"], ""]
    if summary["claims"]:
        lines.append(f"Claims ({COLUMNS[summary['key']]}, difference a - b with its paired bootstrap 95% interval; "
                     "'about as good' means the interval rules out a loss of more than 5% of the teacher's "
                     "score, at least 2 points):")
        for c in summary["claims"]:
            lines.append(f"- {c['claim']}: {c['a']} - {c['b']} = {_interval(c)}: **{c['verdict']}**")
        lines.append("")
    if summary["bands"]:
        lines.append("Bands: " + "; ".join(f"{b['band']}: {'yes' if b['holds'] else 'NO'}" for b in summary["bands"]))
        lines.append("")
    return "\n".join(lines)


def overview(summaries: list[dict]) -> str:
    """Every task's table in one: each row's key metric (its share of the teacher's, its
    compression) per task, then each claim's difference and verdict per task. The one table a
    reader needs; the per-task tables below it hold the other figures."""
    tasks = [s["task"] for s in summaries]
    cells: dict[tuple, dict[str, str]] = {}  # (method, W-E-A, layers, trained, recipe) -> task -> cell
    for s in summaries:
        for r in s["rows"]:
            trained = r["trained"].replace(" (here)", " here").replace(" (shipped)", " shipped")
            recipe = r.get("recipe", "?")  # "?": a table written before rows named their recipe
            cells.setdefault((r["method"], r["quant"], r["layers"], trained, recipe), {})[s["task"]] = (
                f"{r[s['key']]:.1f} ({r['pct_teacher']:.0f}%, {r['compression']:.1f}x)")
    head = ["method", "W-E-A", "layers", "trained", "recipe",
            *[f"{t}: {COLUMNS[s['key']]} (% of teacher, compression)" for t, s in zip(tasks, summaries)]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([*row, *[by_task.get(t, "") for t in tasks]]) + " |" for row, by_task in cells.items()]
    claims: dict[str, dict[str, str]] = {}
    for s in summaries:
        for c in s["claims"]:
            claims.setdefault(c["claim"], {})[s["task"]] = f"{_interval(c)}: {c['verdict']}"
    if claims:
        lines += ["", "| claim (a - b, paired bootstrap 95%) | " + " | ".join(tasks) + " |", "|" + "---|" * (len(tasks) + 1)]
        lines += ["| " + " | ".join([text, *[by_task.get(t, "") for t in tasks]]) + " |" for text, by_task in claims.items()]
    return "\n".join(lines) + "\n"


def plot(results: list[dict], key: str, task: str, path: Path) -> None:
    """Compression (log scale) vs the key metric; one marker per row and a legend, so no label
    sits on another (rows with equal size and score overlap only as markers)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    markers = "*osD^vP"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, r in enumerate(results):
        ax.scatter(r["compression"], r[key], marker=markers[i % len(markers)], s=70, alpha=0.8,
                   label=f"{r['method']} {r['quant']} {r['layers']}"
                   + (f": {r['trained']}, {r['recipe']} recipe" if r["trained"] not in ("the teacher", "-") else ""))
    ax.set_xscale("log")
    ax.set_xlabel("compression vs the fp32 teacher (x, log scale)")
    ax.set_ylabel(f"{COLUMNS[key]} (test)")
    ax.set_title(f"DQ-BART on the toy {task} task: size vs quality")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _interval(claim: dict) -> str:
    return f"{claim['diff']:+.1f} [{claim['low']:+.1f}, {claim['high']:+.1f}]"


def _figures_text(figures: dict) -> str:
    return "  ".join(f"{COLUMNS[k]} {v:.1f}" for k, v in figures.items() if k in COLUMNS)


def _line(r: dict) -> str:
    return (f"{r['method']:>7} {r['quant']:>8} {r['layers']:>4}  {r['bytes'] / 2**20:6.2f} MiB  "
            + _figures_text(r) + f"  train {r['train_s']:.0f}s")


def run(cfg: DemoConfig) -> list[dict]:
    unknown = set(cfg.rows or ()) - {r.name for r in ALL_ROWS}
    if unknown:
        raise ConfigError(f"unknown row(s) {', '.join(sorted(unknown))}; choose from {', '.join(r.name for r in ALL_ROWS)}")
    bad = set(cfg.tasks) - set(TASKS)
    if bad:
        raise ConfigError(f"unknown task(s) {', '.join(sorted(bad))}; choose from {', '.join(TASKS)}")
    summaries = [run_task(TASKS[name], cfg) for name in cfg.tasks]
    # one file with every task's table found under OUT, so tasks run one at a time add up
    found = [t for t in TASKS if Path(cfg.out, t, "results.json").is_file()]
    together = overview([json.loads(Path(cfg.out, t, "results.json").read_text()) for t in found])
    tables = [Path(cfg.out, t, "results.md").read_text() for t in found]
    Path(cfg.out, "results.md").write_text("\n".join(["### all tasks", "", together, *tables]))
    print(f"\n{together}\nwrote {Path(cfg.out, 'results.md')} ({', '.join(found)})")
    return summaries
