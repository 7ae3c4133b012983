"""A student trained to a full budget: the runs behind the recipe study (benchmarks/recipe_study.py),
the shipped students (data_samples/TASK/students/) and `demo --full`.

One run: the row's student (teacher layers copied, quantized with the run's QuantConfig
options), trained on the task's whole training split, batches of 16, with the validation loss
and the task's key metric (4 beams, the first 200 validation examples) at every evaluation, so
one run is one learning curve (in log.jsonl, with each evaluation's predictions beside it). The
checkpoint kept is the one of lowest validation loss (best/): chosen on validation only. The
learning rate decays linearly to 0 at the run's last step, so a point half-way along a curve is a
model in mid-schedule, not a shorter run's end. An interrupted run resumes from last.ckpt.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .data import Batches, load_split, make_batches
from .distill import DistillConfig, DistillLoss, make_student, parse_layers
from .evaluate import predict
from .export import save_packed
from .model import Attention, Bart
from .fakequant import Quantizer
from .quant import QuantConfig, QuantLinear, quantize
from .recipes import recipe_of
from .tasks import SAMPLES, TASKS, Scorer
from .tokenizer import Tokenizer
from .train import TrainConfig, task_loss, train


@dataclass(frozen=True)
class StudentRun:
    task: str                    # a key of minidq.tasks.TASKS
    method: str                  # "QAT" (task loss only) or "DQ" (task + distillation losses)
    quant: str                   # W-E-A bits, e.g. "2-2-8"
    layers: str                  # encoder-decoder layers, e.g. "6-3"
    quant_options: dict = field(default_factory=dict)  # QuantConfig options on top of the bits
    calibrate: float | None = None  # clamp each activation at this percentile of |x| (see calibrate())
    lr: float = 5e-4
    steps: int = 600
    eval_every: int = 150
    seed: int = 0
    batch_size: int = 16
    valid_examples: int = 200    # validation loss and key metric on the first N examples
    distill_options: dict = field(default_factory=dict)  # DistillConfig options (DQ), e.g. logits_kind="kl"

    @property
    def recipe(self) -> str | None:
        """The named recipe (minidq.recipes) this run follows; None for a setting of its own."""
        plain = self.calibrate is None and not self.distill_options
        return recipe_of(self.quant_options, self.lr) if plain else None

    @property
    def row(self) -> str:
        """METHOD-W-E-A-LAYERS, the name its shipped files take; "-paper" added for DQ-BART's own
        recipe, so each shipped row can stand beside the same student of minidq's."""
        return f"{self.method}-{self.quant}-{self.layers}" + ("-paper" if self.recipe == "paper" else "")


def activation_quantizers(model: Bart) -> dict[str, Quantizer]:
    """Every dynamic activation quantizer of the layers (linear inputs, Q, K and V), by module
    path. Left out: the LM head's input (never clamped) and the attention probabilities (in
    [0, 1] already; a percentile of them, mostly near 0 over long sources, would cut every peak)."""
    found = {}
    for name, module in model.named_modules():
        slots = ("input_quant",) if isinstance(module, QuantLinear) else \
            ("q_act", "k_act", "v_act") if isinstance(module, Attention) else ()
        for slot in slots:
            q = getattr(module, slot)
            if isinstance(q, Quantizer):
                found[f"{name}.{slot}"] = q
    return found


@torch.no_grad()
def calibrate(model: Bart, batches: Batches, percentile: float, n_batches: int = 8) -> dict[str, float]:
    """Set each activation quantizer's clamp to the `percentile` of |x| it sees on n_batches
    training batches (the student as copied from the teacher, its quantizers without a clamp)."""
    sites = activation_quantizers(model)
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in sites}
    # a linear's input is watched at the linear (at inference it reaches its quantizer through codes(),
    # the integer-form matmul, not forward()); Q, K and V at their quantizers
    hooks = [(model.get_submodule(name.removesuffix(".input_quant")) if name.endswith(".input_quant") else q)
             .register_forward_pre_hook(lambda m, args, name=name: seen[name].append(args[0].detach().abs().flatten()))
             for name, q in sites.items()]
    model.eval()
    for _, batch in zip(range(n_batches), batches.epoch(0)):
        model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
    for h in hooks:
        h.remove()
    return {name: q.calibrate(torch.cat(seen[name]), percentile) for name, q in sites.items()}


def train_student(run: StudentRun, out: str | Path, settings: dict | None = None,
                  teacher_dir: str | Path | None = None, data_dir: str | Path | None = None) -> dict:
    """Train (or resume, or find finished) one run into `out`; returns its last evaluation.
    settings: what else identifies the run for a resume (e.g. the name of its recipe)."""
    out, task = Path(out), TASKS[run.task]
    if (out / "done.json").is_file():
        return json.loads((out / "done.json").read_text())
    teacher_dir = Path(teacher_dir or SAMPLES / task.name / "teacher")
    data_dir = Path(data_dir or SAMPLES / task.name)
    teacher, tokenizer = Bart.from_pretrained(teacher_dir), Tokenizer.from_pretrained(teacher_dir)
    train_ex, valid_ex = load_split(data_dir, "train"), load_split(data_dir, "valid")[: run.valid_examples]
    batches = {split: make_batches(ex, tokenizer, 256, task.max_target_length, run.batch_size, tokenizer.pad_token_id,
                                   shuffle=split == "train", seed=run.seed, where=split)
               for split, ex in (("train", train_ex), ("valid", valid_ex))}
    scorer = Scorer.for_examples(task, valid_ex, data_dir, "valid")
    torch.manual_seed(run.seed)
    encoder_layers, decoder_layers = parse_layers(run.layers)
    student = quantize(make_student(teacher, encoder_layers, decoder_layers),
                       QuantConfig.parse(run.quant, **run.quant_options))
    clips = calibrate(student, batches["train"], run.calibrate) if run.calibrate else None

    def on_eval(model: Bart, step: int) -> dict:
        preds = predict(model, tokenizer, scorer.sources, batch_size=32, progress=False, num_beams=4,
                        max_length=task.max_length, early_stopping=True)
        (out / f"preds_{step:06d}.json").write_text(json.dumps(preds) + "\n")
        return {k: v for k, v in scorer.figures(preds).items() if k in (scorer.key(), "rougeL", "chrf")}

    loss_fn = DistillLoss(teacher, DistillConfig(**run.distill_options)) if run.method == "DQ" else task_loss
    cfg = TrainConfig(out_dir=str(out), max_steps=run.steps, batch_size=run.batch_size, lr=run.lr,
                      warmup_steps=max(10, run.steps // 20), eval_every=run.eval_every, eval_examples=0,
                      log_every=50, seed=run.seed, progress=False)
    # A run stopped before its first checkpoint left only its records: it starts again, and train's
    # overwrite keeps those records in OUT/previous/ until the new run has saved.
    resume = (out / "last.ckpt").is_file()
    figures = train(student, tokenizer, batches["train"], batches["valid"], valid_ex, cfg, loss_fn=loss_fn,
                    resume=resume, overwrite=not resume, on_eval=on_eval, settings=settings or {})
    if clips:
        (out / "clips.json").write_text(json.dumps(clips, indent=1) + "\n")
    (out / "done.json").write_text(json.dumps(figures) + "\n")
    return figures


def ship(run: StudentRun, run_dir: str | Path, students_dir: str | Path, command: str) -> Path:
    """A finished run's student, as shipped in data_samples/TASK/students/: ROW.packed (its best/
    checkpoint, lowest validation loss, packed with the tokenizer), ROW.json (the run's settings,
    the command that trains it, its validation curve and the step kept) and ROW.log.jsonl."""
    run_dir, students_dir = Path(run_dir), Path(students_dir)
    if not (run_dir / "done.json").is_file():
        raise FileNotFoundError(f"{run_dir}: not a finished run (no done.json)")
    log = (run_dir / "log.jsonl").read_text()
    evals = [r for r in map(json.loads, log.splitlines()) if "val_loss" in r]
    kept = min(evals, key=lambda r: r["val_loss"])
    students_dir.mkdir(parents=True, exist_ok=True)
    packed = students_dir / f"{run.row}.packed"
    save_packed(Bart.from_pretrained(run_dir / "best"), packed, Tokenizer.from_pretrained(run_dir / "best"))
    record = {"row": run.row, "run": asdict(run), "command": command, "kept_step": kept["step"],
              "kept_because": "lowest validation loss", "validation": evals}
    (students_dir / f"{run.row}.json").write_text(json.dumps(record, indent=1) + "\n")
    (students_dir / f"{run.row}.log.jsonl").write_text(log)
    return packed


def shipped(students_dir: str | Path) -> dict[str, tuple[Path, dict]]:
    """ROW -> (its packed file, its record) for every student shipped in `students_dir`."""
    found = {}
    for record_file in sorted(Path(students_dir).glob("*.json")):
        record = json.loads(record_file.read_text())
        found[record["row"]] = (record_file.with_suffix(".packed"), record)
    return found
