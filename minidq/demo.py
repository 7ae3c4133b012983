"""`make demo`: the paper's results table, reproduced on the toy task from the shipped teacher.

For each row: build the student (teacher layers copied), quantize it, train it where the row
trains (the same number of steps for every trained row), write it packed in real low-bit
form, load the packed file back, and score that reloaded model on the test split.

    PTQ  2-2-8  6-6   quantize the teacher, no training
    QAT  2-2-8  6-6   quantization-aware training, task loss only
    DQ   8-8-8  6-6   joint distillation and quantization (task loss + distillation terms)
    DQ   2-2-8  6-6
    DQ   2-2-8  6-3   fewer decoder layers
    DQ   2-2-8  6-1

Writes results.md, results.json and compression_vs_rouge.png into the output folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .data import Batches, encode, load_split
from .distill import DistillConfig, DistillLoss, make_student
from .evaluate import evaluate
from .metrics import rouge
from .export import footprint, load_packed, save_packed
from .model import Bart
from .quant import QuantConfig, quantize
from .tokenizer import Tokenizer
from .train import TrainConfig, task_loss, train


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


SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"  # the repo's shipped data


@dataclass
class DemoConfig:
    teacher: str = str(SAMPLES / "teacher")
    data: str = str(SAMPLES / "summarization")
    out: str = "runs/demo"
    rows: tuple[str, ...] = tuple(r.name for r in ROWS)
    steps: int = 120               # optimizer steps for every trained row (an equal budget)
    batch_size: int = 16
    lr: float = 5e-4
    warmup_steps: int = 10
    train_examples: int = 0        # 0 = the whole training split
    valid_examples: int = 64       # validation loss at the end of each run
    test_examples: int = 200       # the first N of the test split (0 = all 500)
    num_beams: int = 4
    max_length: int = 64
    max_source_length: int = 256
    max_target_length: int = 64
    seed: int = 0
    device: str = "cpu"

    @classmethod
    def quick(cls, **overrides) -> "DemoConfig":
        """A seconds-long run of every row, for the tests: it checks the plumbing, not the figures."""
        return cls(**{**dict(steps=2, batch_size=4, train_examples=16, valid_examples=4, test_examples=4,
                             num_beams=1, max_length=24), **overrides})


def build_row(row: Row, teacher: Bart, tokenizer: Tokenizer, train_batches: Batches, valid_batches: Batches,
              valid, cfg: DemoConfig, run_dir: Path) -> Bart:
    """The student of one row, quantized and (unless PTQ) trained."""
    encoder_layers, decoder_layers = (int(n) for n in row.layers.split("-"))
    student = make_student(teacher, encoder_layers, decoder_layers)
    quantize(student, QuantConfig.parse(row.quant))
    if row.method == "PTQ":
        return student
    loss_fn = DistillLoss(teacher, DistillConfig()) if row.method == "DQ" else task_loss
    train_cfg = TrainConfig(out_dir=str(run_dir), max_steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                            warmup_steps=cfg.warmup_steps, eval_every=cfg.steps, eval_examples=0,
                            log_every=max(1, cfg.steps // 30), seed=cfg.seed, device=cfg.device)
    train(student, tokenizer, train_batches, valid_batches, valid, train_cfg, loss_fn=loss_fn, overwrite=True)
    return student


def main(args) -> None:
    """Entry point of `python -m minidq demo` (args from the CLI)."""
    cfg = DemoConfig.quick() if args.quick else DemoConfig()
    cfg.out = args.out
    if args.rows:
        cfg.rows = tuple(args.rows.split(","))
    for name in ("teacher", "data", "steps", "test_examples", "device"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    run(cfg)


def run(cfg: DemoConfig) -> list[dict]:
    unknown = set(cfg.rows) - {r.name for r in ROWS}
    if unknown:
        raise ValueError(f"unknown row(s) {', '.join(sorted(unknown))}; choose from {', '.join(r.name for r in ROWS)}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    teacher = Bart.from_pretrained(cfg.teacher).to(cfg.device)
    tokenizer = Tokenizer.from_pretrained(cfg.teacher)
    splits = {s: load_split(cfg.data, s) for s in ("train", "valid", "test")}
    train_ex = splits["train"][: cfg.train_examples or None]
    valid_ex = splits["valid"][: cfg.valid_examples]
    test_ex = splits["test"][: cfg.test_examples or None]
    batches = {name: Batches(encode(ex, tokenizer, cfg.max_source_length, cfg.max_target_length).pairs,
                             cfg.batch_size, tokenizer.pad_token_id, shuffle=name == "train", seed=cfg.seed)
               for name, ex in (("train", train_ex), ("valid", valid_ex))}
    decoding = dict(num_beams=cfg.num_beams, max_length=cfg.max_length)
    teacher_bytes = (Path(cfg.teacher) / "model.safetensors").stat().st_size

    def score(model: Bart) -> dict:
        return evaluate(model, tokenizer, test_ex, batch_size=32, max_source_length=cfg.max_source_length,
                        **decoding)

    print(f"teacher: {cfg.teacher} ({teacher_bytes / 2**20:.2f} MiB fp32); test: {len(test_ex)} examples")
    # What "learned nothing" scores: the first 30 words of the article (benchmarks/lead_baseline.py).
    lead = {k: 100 * v for k, v in rouge([" ".join(ex.source.split()[:30]) for ex in test_ex],
                                         [ex.target for ex in test_ex]).items()}
    print(f"lead-30 baseline: R1 {lead['rouge1']:.1f}  R2 {lead['rouge2']:.1f}  RL {lead['rougeL']:.1f}")
    results = [{"method": "teacher", "quant": "32-32-32", "layers": "6-6", "bytes": teacher_bytes,
                **_figures(score(teacher)), "train_s": 0.0}]
    print(_line(results[0]))
    for row in ROWS:
        if row.name not in cfg.rows:
            continue
        start = time.perf_counter()
        student = build_row(row, teacher, tokenizer, batches["train"], batches["valid"], valid_ex, cfg,
                            out / row.name)
        train_s = time.perf_counter() - start
        packed = out / f"{row.name}.packed"
        save_packed(student.cpu(), packed, tokenizer)
        reloaded = load_packed(packed).to(cfg.device)
        results.append({"method": row.method, "quant": row.quant, "layers": row.layers,
                        "bytes": footprint(packed).model_bytes,  # the file less its embedded tokenizer
                        **_figures(score(reloaded)), "train_s": train_s})
        print(_line(results[-1]))
    for r in results:
        r["compression"] = teacher_bytes / r["bytes"]
        r["rougeL_pct_teacher"] = 100 * r["rougeL"] / results[0]["rougeL"]
    caption = (f"Test split, first {len(test_ex)} examples; decoding: {cfg.num_beams} beams, max_length "
               f"{cfg.max_length}, length_penalty 1.0, early stopping. Each trained row: {cfg.steps} steps of "
               f"{cfg.batch_size} examples, lr {cfg.lr}. Sizes are the packed files (2-bit codes, fp16 "
               f"norms/biases/positions, tokenizer not counted); compression is against the teacher's fp32 "
               f"model.safetensors. Lead-30 baseline (first 30 words of the article): ROUGE-1/2/L "
               f"{lead['rouge1']:.1f}/{lead['rouge2']:.1f}/{lead['rougeL']:.1f}.")
    (out / "results.json").write_text(json.dumps({"config": asdict(cfg), "caption": caption, "lead_30": lead,
                                                  "rows": results},
                                                 indent=2) + "\n")
    (out / "results.md").write_text(markdown_table(results, caption))
    plot(results, out / "compression_vs_rouge.png")
    print("\n" + markdown_table(results, caption))
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'compression_vs_rouge.png'}")
    return results


def _figures(scores: dict) -> dict:
    return {k: scores[k] for k in ("rouge1", "rouge2", "rougeL")}


def _line(r: dict) -> str:
    return (f"{r['method']:>7} {r['quant']:>8} {r['layers']:>4}  {r['bytes'] / 2**20:6.2f} MiB  "
            f"R1 {r['rouge1']:.1f}  R2 {r['rouge2']:.1f}  RL {r['rougeL']:.1f}  train {r['train_s']:.0f}s")


def markdown_table(results: list[dict], caption: str) -> str:
    lines = ["| method | W-E-A | layers | size (MiB) | compression | ROUGE-1 | ROUGE-2 | ROUGE-L | ROUGE-L % of teacher | train time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['method']} | {r['quant']} | {r['layers']} | {r['bytes'] / 2**20:.2f} | "
                     f"{r['compression']:.1f}x | {r['rouge1']:.1f} | {r['rouge2']:.1f} | {r['rougeL']:.1f} | "
                     f"{r['rougeL_pct_teacher']:.1f} | {r['train_s']:.0f} |")
    return "\n".join(lines) + f"\n\n{caption}\n"


def plot(results: list[dict], path: Path) -> None:
    """Compression vs ROUGE-L, one labelled point per row (matplotlib is only needed here)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in results:
        ax.scatter(r["compression"], r["rougeL"], color="tab:blue" if r["method"] == "DQ" else "tab:gray")
        ax.annotate(f"{r['method']} {r['quant']} {r['layers']}", (r["compression"], r["rougeL"]),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("compression vs the fp32 teacher (x)")
    ax.set_ylabel("ROUGE-L (test)")
    ax.set_title("DQ-BART on the toy task: size vs quality")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
