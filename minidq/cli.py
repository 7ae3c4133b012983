"""`python -m minidq <command>` (or `minidq <command>`): train, distill, evaluate, generate, export, info, demo.

Each command is a small function over the package's public API; a mistake in the arguments
or a missing file is one line on stderr and a non-zero exit, never a traceback
(set MINIDQ_DEBUG=1 to see the traceback anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from dataclasses import replace

import torch

from .config import BartConfig, ConfigError
from .data import Batches, DataError, encode, load_split
from .evaluate import evaluate
from .model import Bart
from .pretrained import CheckpointError
from .quant import QuantConfig, quantize
from .tokenizer import Tokenizer
from .train import TrainConfig, TrainingError, train

ERRORS = (FileNotFoundError, NotADirectoryError, ConfigError, CheckpointError, DataError, TrainingError, ValueError)


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="folder with train/valid/test .jsonl files")
    p.add_argument("--source-field", default="source", help="JSON field of the input text (default: source)")
    p.add_argument("--target-field", default="target", help="JSON field of the output text (default: target)")
    p.add_argument("--skip-bad-lines", action="store_true", help="drop malformed lines (counted) instead of stopping")
    p.add_argument("--max-source-length", type=int, default=256, help="source tokens kept (default: 256)")
    p.add_argument("--max-target-length", type=int, default=64, help="target tokens kept (default: 64)")


def add_generation_args(p: argparse.ArgumentParser) -> None:
    """Decoding options; those not given fall back to the checkpoint's generation defaults."""
    p.add_argument("--num-beams", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument("--min-length", type=int)
    p.add_argument("--length-penalty", type=float)
    p.add_argument("--no-repeat-ngram-size", type=int)
    p.add_argument("--batch-size", type=int, default=32)


def generation_kwargs(args: argparse.Namespace) -> dict:
    names = ("num_beams", "max_length", "min_length", "length_penalty", "no_repeat_ngram_size")
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def read(args: argparse.Namespace, split: str):
    return load_split(args.data, split, source_field=args.source_field, target_field=args.target_field,
                      skip_bad=args.skip_bad_lines)


def load_model(path: str) -> tuple[Bart, Tokenizer]:
    """A model and its tokenizer from an HF checkpoint folder, or from a packed file (`minidq export`)."""
    directory = Path(path)
    if directory.is_file():
        from .export import load_packed, load_packed_tokenizer

        return load_packed(directory), load_packed_tokenizer(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such checkpoint folder or packed file")
    return Bart.from_pretrained(directory), Tokenizer.from_pretrained(directory)


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(out_dir=args.out, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                       grad_accum=args.grad_accum, lr=args.lr, warmup_steps=args.warmup_steps,
                       eval_every=args.eval_every, eval_examples=args.eval_examples, metric=args.metric,
                       seed=args.seed, device=args.device)


def train_and_valid(args: argparse.Namespace, tokenizer: Tokenizer) -> tuple[Batches, Batches, list]:
    """Batches of the train and valid splits, and the valid examples (for ROUGE/BLEU)."""
    splits = {}
    for split in ("train", "valid"):
        examples = read(args, split)
        enc = encode(examples, tokenizer, args.max_source_length, args.max_target_length)
        if enc.sources_truncated or enc.targets_truncated:
            print(f"{split}: truncated {enc.sources_truncated} sources and {enc.targets_truncated} targets "
                  f"of {len(examples)}", file=sys.stderr)
        splits[split] = (examples, Batches(enc.pairs, args.batch_size, tokenizer.pad_token_id,
                                           shuffle=split == "train", seed=args.seed))
    return splits["train"][1], splits["valid"][1], splits["valid"][0]


def cmd_train(args: argparse.Namespace) -> None:
    if args.model:
        model, tokenizer = load_model(args.model)
    else:
        if not args.config:
            raise ValueError("give --model DIR (fine-tune a checkpoint) or --config FILE (a fresh model)")
        tokenizer = Tokenizer.from_pretrained(args.tokenizer or args.data)
        torch.manual_seed(args.seed)
        model = Bart(BartConfig.from_pretrained(args.config))
        if model.config.vocab_size != tokenizer.vocab_size:
            raise ValueError(f"{args.config}: vocab_size {model.config.vocab_size} but the tokenizer has "
                             f"{tokenizer.vocab_size} tokens")
    if args.quant:  # quantization-aware training: the loop trains the latent weights through the STE
        quantize(model, QuantConfig.parse(args.quant))
    figures = train(model, tokenizer, *train_and_valid(args, tokenizer), train_config(args), resume=args.resume)
    print(json.dumps({"out": args.out, **figures}))


def cmd_distill(args: argparse.Namespace) -> None:
    """DQ-BART: student from teacher layers, quantized, trained on task + distillation losses, exported packed."""
    from .distill import DistillConfig, DistillLoss, make_student
    from .export import save_packed

    teacher, tokenizer = load_model(args.teacher)
    try:
        encoder_layers, decoder_layers = (int(n) for n in args.layers.split("-"))
    except ValueError:
        raise ValueError(f"--layers {args.layers!r}: expected encoder-decoder layers such as 6-3") from None
    student = make_student(teacher, encoder_layers, decoder_layers)
    quantize(student, QuantConfig.parse(args.quant))
    if args.weighted:  # the authors' --weighted preset
        distill_cfg = replace(DistillConfig.weighted(), logits_kind=args.logits_loss, temperature=args.temperature)
    else:
        distill_cfg = DistillConfig(ce=args.w_ce, logits=args.w_logits, hidden=args.w_hidden,
                                    attention=args.w_attention, logits_kind=args.logits_loss,
                                    temperature=args.temperature, reduction=args.reduction)
    loss_fn = DistillLoss(teacher, distill_cfg)
    figures = train(student, tokenizer, *train_and_valid(args, tokenizer), train_config(args), loss_fn=loss_fn,
                    resume=args.resume)
    packed = Path(args.out) / "student.packed"
    save_packed(student.cpu(), packed, tokenizer)
    print(json.dumps({"out": args.out, "packed": str(packed), "bytes": packed.stat().st_size, **figures}))


def cmd_evaluate(args: argparse.Namespace) -> None:
    model, tokenizer = load_model(args.model)
    if args.quant:  # post-training quantization: round the weights and activations, no training
        quantize(model, QuantConfig.parse(args.quant))
    examples = read(args, args.split)[: args.limit or None]
    scores = evaluate(model, tokenizer, examples, metric=args.metric, batch_size=args.batch_size,
                      max_source_length=args.max_source_length, **generation_kwargs(args))
    preds = scores.pop("predictions")
    if args.predictions:
        Path(args.predictions).write_text("".join(p + "\n" for p in preds))
    names = ("rouge1", "rouge2", "rougeL", "rougeLsum") if args.metric == "rouge" else ("bleu",)
    print(f"{args.split}: {len(examples)} examples, " + ", ".join(f"{n} {scores[n]:.2f}" for n in names)
          + f", {scores['examples_per_s']:.1f} examples/s")


def cmd_generate(args: argparse.Namespace) -> None:
    from .evaluate import predict

    model, tokenizer = load_model(args.model)
    texts = args.text or [line.strip() for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("nothing to generate from: give texts as arguments or lines on stdin")
    for out in predict(model, tokenizer, texts, args.batch_size, progress=False, **generation_kwargs(args)):
        print(out)


def cmd_export(args: argparse.Namespace) -> None:
    """Real low-bit storage: the (quantized) model as one packed file, then its footprint table."""
    from .export import footprint, format_footprint, save_packed

    model, tokenizer = load_model(args.model)
    if args.quant:  # post-training quantization first (a checkpoint trained with --quant already is)
        quantize(model, QuantConfig.parse(args.quant))
    save_packed(model, args.out, tokenizer, packing=args.packing, float_dtype=args.float_dtype,
                int8_positions=args.int8_positions)
    print(format_footprint(footprint(args.out)))


def cmd_info(args: argparse.Namespace) -> None:
    from .export import footprint, format_footprint

    print(format_footprint(footprint(args.path), footprint(args.teacher) if args.teacher else None))


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import main as demo

    demo(args)


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder: best/, last.ckpt, log.jsonl")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=0, help="optimizer steps (0 = all epochs)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-examples", type=int, default=100, help="validation examples generated for the metric")
    p.add_argument("--metric", choices=("rouge", "bleu"), default="rouge")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minidq", description="DQ-BART: distill and quantize BART, from scratch.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="fine-tune a checkpoint (or train a fresh config) on a JSONL dataset")
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--model", help="HF checkpoint folder to start from (config, weights, tokenizer)")
    p.add_argument("--config", help="config.json of a fresh model (instead of --model)")
    p.add_argument("--tokenizer", help="tokenizer folder for --config (default: the --data folder)")
    p.add_argument("--quant", help="W-E-A bits, e.g. 2-2-8: quantization-aware training (QAT)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="DQ-BART: distill and quantize a student of the teacher, export it packed")
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--teacher", required=True, help="the fine-tuned teacher (HF checkpoint folder)")
    p.add_argument("--layers", default="6-6", help="student encoder-decoder layers, e.g. 6-3 (default: 6-6)")
    p.add_argument("--quant", default="2-2-8", help="W-E-A bits of the student (default: 2-2-8)")
    p.add_argument("--w-ce", type=float, default=1.0, help="weight of the task loss")
    p.add_argument("--w-logits", type=float, default=1.0, help="weight of the logits term (0 = off)")
    p.add_argument("--w-hidden", type=float, default=1.0, help="weight of the hidden-state term (0 = off)")
    p.add_argument("--w-attention", type=float, default=1.0, help="weight of the attention-map term (0 = off)")
    p.add_argument("--logits-loss", choices=("mse", "kl"), default="mse")
    p.add_argument("--temperature", type=float, default=2.0, help="for --logits-loss kl")
    p.add_argument("--reduction", choices=("mean", "sum"), default="mean",
                   help="distillation terms averaged over layers (default) or summed as in the authors' code")
    p.add_argument("--weighted", action="store_true",
                   help="the authors' --weighted preset: summed terms, logits 0.8, hidden and attention 3 "
                        "(overrides --w-* and --reduction)")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("evaluate", help="generate on a split and print ROUGE (or BLEU) and speed")
    add_data_args(p)
    add_generation_args(p)
    p.add_argument("--model", required=True, help="HF checkpoint folder, or a packed file (minidq export)")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=0, help="first N examples only (0 = all)")
    p.add_argument("--metric", choices=("rouge", "bleu"), default="rouge")
    p.add_argument("--predictions", help="write the generated outputs here, one per line")
    p.add_argument("--quant", help="W-E-A bits, e.g. 2-2-8: post-training quantization (PTQ) before evaluating")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("generate", help="summarize texts given as arguments, or one per line on stdin")
    add_generation_args(p)
    p.add_argument("--model", required=True, help="HF checkpoint folder, or a packed file (minidq export)")
    p.add_argument("text", nargs="*", help="input texts (default: read lines from stdin)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("export", help="store a quantized model in real low-bit form: one packed file")
    p.add_argument("--model", required=True, help="HF checkpoint folder (or a packed file)")
    p.add_argument("--quant", help="W-E-A bits, e.g. 2-2-8: post-training quantization before packing")
    p.add_argument("--out", required=True, help="the packed file to write, e.g. student.packed")
    p.add_argument("--packing", choices=("bits", "trits"), default="bits",
                   help="3-level codes at 2 bits (4 per byte) or as trits (5 per byte, 1.6 bits)")
    p.add_argument("--float-dtype", choices=("fp16", "fp32"), default="fp16",
                   help="storage of what is not quantized (norms, biases, positions); fp32: outputs identical")
    p.add_argument("--int8-positions", action="store_true", help="position tables as 8-bit codes (lossy)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="where the bytes of a packed file (or an HF folder) go, and the compression")
    p.add_argument("path", help="a packed file, or an HF checkpoint folder (its model.safetensors)")
    p.add_argument("--teacher", help="an fp32 HF checkpoint folder to compare against")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="the whole pipeline on the shipped teacher and data")
    p.add_argument("--out", default="runs/demo", help="output folder for the results table")
    p.add_argument("--quick", action="store_true", help="a seconds-long version (for tests)")
    p.add_argument("--task", choices=("all", "summarization", "qa", "translation"), default="all",
                   help="one task's table, or all three (default)")
    p.add_argument("--rows", help="comma-separated rows to run, e.g. PTQ-2-2-8-6-6,DQ-2-2-8-6-1 "
                                  "(default: all but DQ-2-2-8-6-1)")
    p.add_argument("--teacher", help="teacher checkpoint folder (default: data_samples/TASK/teacher)")
    p.add_argument("--data", help="data folder with train/valid/test.jsonl (default: data_samples/TASK)")
    p.add_argument("--reduction", choices=("mean", "sum"), help="how distillation terms add up (default: mean)")
    p.add_argument("--seed", type=int, help="seed of the students' training (default: 0)")
    p.add_argument("--steps", type=int, help="optimizer steps per trained row")
    p.add_argument("--test-examples", type=int, help="score the first N test examples (0 = all)")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ERRORS as e:
        if os.environ.get("MINIDQ_DEBUG"):
            raise
        print(f"minidq {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0
