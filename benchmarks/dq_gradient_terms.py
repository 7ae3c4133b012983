"""Which way does a DQ step push? Each loss term's gradient against the task loss's.

At full budget QAT 2-2-8 6-6 ends ahead of DQ on test on both fact tasks
(benchmarks/results/recipe_study.md), and DQ's validation cross-entropy sits above QAT's at every
evaluation. This measures why: on a few training batches, the gradient of each DQ term (task CE,
logits MSE, hidden MSE, attention MSE, as weighted in the loss) with respect to the student's
weights, its norm, and its cosine with the CE gradient; and the cosine of the whole DQ gradient
with the CE gradient (QAT's step is the CE gradient, cosine 1). A cosine near 0 means the step
mostly serves the teacher-matching terms, not the task loss that decides the outputs.

    OMP_NUM_THREADS=1 python benchmarks/dq_gradient_terms.py --task summarization
    OMP_NUM_THREADS=1 python benchmarks/dq_gradient_terms.py --task summarization \\
        --student runs/study/summarization/DQ-2-2-8-6-6/noclip-row-lr0.0001-steps1500-seed0/best

Without --student: the student as training starts (teacher layers copied, quantized with the
minidq recipe). With --student: a trained student's latent weights (a study run's best/).
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import torch

from minidq.data import load_split, make_batches
from minidq.distill import DistillConfig, DistillLoss, make_student, parse_layers
from minidq.model import Bart
from minidq.quant import QuantConfig, quantize
from minidq.tasks import SAMPLES, TASKS
from minidq.tokenizer import Tokenizer

TERMS = ("ce", "logits", "hidden", "attention")


def term_gradients(student: Bart, teacher: Bart, batch: dict, cfg: DistillConfig) -> dict[str, torch.Tensor]:
    """Each term's gradient (flattened over the student's trainable weights), weighted as in cfg."""
    params = [p for p in student.parameters() if p.requires_grad]
    grads = {}
    for term in TERMS:
        only = replace(cfg, **{t: 0.0 for t in TERMS if t != term})  # every other setting as in cfg
        loss, _ = DistillLoss(teacher, only)(student, batch)
        grads[term] = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params, allow_unused=True)
                                 if g is not None])
    return grads


def logits_mse_parts(student: Bart, teacher: Bart, batch: dict) -> dict[str, float]:
    """How the logits MSE splits: the share that is a per-position shift of every logit (the
    softmax, and so the CE and the outputs, cannot see it) and the share from the teacher's 10
    most likely tokens at each position (the ones decoding can pick)."""
    with torch.no_grad():
        s = student(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).logits
        t = teacher(batch["input_ids"], batch["attention_mask"], decoder_input_ids=teacher.shift_right(batch["labels"])).logits
    mask = batch["labels"] != -100
    d, t = (s - t)[mask], t[mask]                     # (positions, V)
    total = d.pow(2).mean()
    shift = d.mean(-1).pow(2).mean()
    top = d.gather(-1, t.topk(10, dim=-1).indices).pow(2).sum(-1).mean() / d.shape[-1]
    return {"shift": (shift / total).item(), "top10": (top / total).item()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=sorted(TASKS), default="summarization")
    p.add_argument("--layers", default="6-6")
    p.add_argument("--student", help="a trained student's folder (a study run's best/); default: the student at step 0")
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--reduction", choices=("mean", "sum"), default="mean")
    p.add_argument("--logits-kind", choices=("mse", "kl"), default="mse", help="the logits term measured")
    args = p.parse_args()
    torch.manual_seed(0)
    task = TASKS[args.task]
    teacher_dir = SAMPLES / task.name / "teacher"
    teacher, tokenizer = Bart.from_pretrained(teacher_dir), Tokenizer.from_pretrained(teacher_dir)
    if args.student:
        student = Bart.from_pretrained(args.student)
    else:
        student = quantize(make_student(teacher, *parse_layers(args.layers)),
                           QuantConfig.parse("2-2-8", clip_val=None, weight_per_row=True))
    student.train()
    examples = load_split(SAMPLES / task.name, "train")[: 16 * args.batches]
    batches = make_batches(examples, tokenizer, 256, task.max_target_length, 16, tokenizer.pad_token_id,
                           shuffle=True, seed=0, where="train")
    cfg = DistillConfig(reduction=args.reduction, logits_kind=args.logits_kind)
    rows = {t: {"norm": [], "cos_ce": []} for t in (*TERMS, "all")}
    parts = []
    for batch in batches.epoch(0):
        parts.append(logits_mse_parts(student, teacher, batch))
        grads = term_gradients(student, teacher, batch, cfg)
        grads["all"] = sum(grads.values())
        for t, g in grads.items():
            rows[t]["norm"].append(g.norm().item())
            rows[t]["cos_ce"].append(torch.nn.functional.cosine_similarity(g, grads["ce"], dim=0).item())
    print(f"{args.task}, DQ 2-2-8 {args.layers}, {args.student or 'step 0 (teacher layers copied, quantized)'}; "
          f"{len(rows['ce']['norm'])} batches of 16, distillation {args.reduction}-reduced, logits term "
          f"{args.logits_kind}; median over batches")
    print("| term | gradient norm | x CE's | cosine with CE's gradient |\n|---|---|---|---|")
    ce_norm = statistics.median(rows["ce"]["norm"])
    for t, r in rows.items():
        norm = statistics.median(r["norm"])
        print(f"| {t if t != 'all' else 'DQ step (all terms)'} | {norm:.4g} | {norm / ce_norm:.2f} | "
              f"{statistics.median(r['cos_ce']):+.2f} |")
    print(f"logits MSE: {100 * statistics.median(p['shift'] for p in parts):.1f}% of it a per-position shift of "
          f"every logit (invisible to the softmax), {100 * statistics.median(p['top10'] for p in parts):.1f}% "
          f"from the teacher's 10 most likely tokens (of {teacher.config.vocab_size})")


if __name__ == "__main__":
    main()
