"""`python -m minidq <command>` (or `minidq <command>`): train, distill, evaluate, generate, export, info,
tokenizer, seqkd, demo.

Each command is a small function over the package's public API. One error path: a mistake in
the arguments, a bad file or a diverged run prints one line, `minidq: error: ...` naming the
flag or file, and exits 2; `--debug` shows the traceback instead. Ctrl-C prints one line and
exits 130 (a training run's last.ckpt is written atomically, so it is always whole).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from itertools import islice
from pathlib import Path
from dataclasses import replace

import torch

from .config import BartConfig, ConfigError
from . import distributed
from .data import Batches, DataError, load_split, make_batches, read_facts, read_jsonl
from .errors import MinidqError, MinidqWarning
from .guard import OutputError, check_output, data_inputs, fingerprint
from .evaluate import evaluate
from .generate import resolve_config
from .metrics import fact_figures
from .model import Bart
from .quant import QuantConfig, quantize
from .recipes import RECIPES
from .stream import JsonlExamples, LazyPairs
from .tokenizer import Tokenizer
from .runs import check_out_dir
from .train import TrainConfig, task_loss, train

# What a user's mistake raises: one line, exit 2. Anything else is a bug in minidq: exit 1.
USER_ERRORS = (MinidqError, OSError)
# Flags that do not change what a run computes, so a resumed run may differ in them.
NOT_SETTINGS = ("func", "command", "debug", "out", "resume", "resume_anyway", "overwrite", "no_progress")
# Flags added after runs were saved: left out of the settings at these defaults, so those runs still resume.
LATER_FLAGS = {"precision": "fp32", "act_scale": "tensor", "stream": False, "recipe": "paper", "clip_val": None,
               "no_clip": False, "weight_per_row": False}
SEED_MAX = 2**32 - 1  # numpy's range, and more than enough seeds


class DefaultsFormatter(argparse.HelpFormatter):
    """--help shows each option's default, unless its help says it already or it has none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) \
                and "default" not in text:
            text += f" (default: {action.default})"
        return text


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line like every other error (not the whole usage text),
    and --help shows the defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"minidq: error: {message} (see {self.prog} --help)\n")


def at_least(low: int, high: int | None = None):
    """An argparse type: an integer >= low (and <= high), e.g. --batch-size 0 is refused before anything runs."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is less than {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{value} is more than {high}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def number(low: float = -math.inf, *, above: bool = False):
    """An argparse type: a finite float >= low (or > low with above=True); nan and inf are refused."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < low or (above and value == low):
            raise argparse.ArgumentTypeError(f"{value:g} is not {'above' if above else 'at least'} {low:g}")
        return value
    parse.__name__ = "number" if low == -math.inf else f"number {'>' if above else '>='} {low:g}"
    return parse


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="folder with train/valid/test .jsonl files")
    p.add_argument("--source-field", default="source", help="JSON field of the input text (default: source)")
    p.add_argument("--target-field", default="target", help="JSON field of the output text (default: target)")
    p.add_argument("--skip-bad-lines", action="store_true", help="drop malformed lines (counted) instead of stopping")
    p.add_argument("--max-source-length", type=at_least(2), default=256, help="source tokens kept (default: 256)")
    p.add_argument("--max-target-length", type=at_least(2), default=64, help="target tokens kept (default: 64)")


def add_generation_args(p: argparse.ArgumentParser) -> None:
    """Decoding options; those not given fall back to the checkpoint's generation defaults."""
    p.add_argument("--num-beams", type=at_least(1), help="beams (1 = greedy; default: the checkpoint's)")
    p.add_argument("--max-length", type=at_least(1),
                   help="output tokens at most, the decoder start token included (default: the checkpoint's)")
    p.add_argument("--min-length", type=at_least(0), help="no EOS before this length (default: the checkpoint's)")
    p.add_argument("--length-penalty", type=number(),
                   help="beam score = log-prob / length ** this (default: the checkpoint's)")
    p.add_argument("--no-repeat-ngram-size", type=at_least(0),
                   help="no n-gram of this size twice, 0 = off (default: the checkpoint's)")
    p.add_argument("--batch-size", type=at_least(1), default=32, help="sources decoded at once")


def generation_kwargs(args: argparse.Namespace) -> dict:
    names = ("num_beams", "max_length", "min_length", "length_penalty", "no_repeat_ngram_size")
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def check_data(args: argparse.Namespace, *splits: str) -> None:
    """The --data folder and the splits this command reads, before anything is loaded: a missing
    folder would otherwise surface later as 'no tokenizer' or after minutes of work."""
    data = Path(args.data)
    if not data.is_dir():
        raise DataError(f"--data {data}: no such folder (it should hold {', '.join(s + '.jsonl' for s in splits)})")
    missing = [s + ".jsonl" for s in splits if not (data / f"{s}.jsonl").is_file()]
    if missing:
        raise DataError(f"--data {data}: no {' or '.join(missing)} in it")


def read(args: argparse.Namespace, split: str):
    if split == "train" and getattr(args, "seqkd_data", None):  # sequence-level KD: the teacher's outputs
        return read_jsonl(args.seqkd_data, skip_bad=args.skip_bad_lines)
    return load_split(args.data, split, source_field=args.source_field, target_field=args.target_field,
                      skip_bad=args.skip_bad_lines)


def load_model(path: str, use: str = "inference", flag: str = "--model") -> tuple[Bart, Tokenizer]:
    """A model and its tokenizer from an HF checkpoint folder, or from a packed file (`minidq export`).

    use: "inference" (a packed file computes in integers), "training" (a packed file in its
    fake-quantized, trainable form: further QAT, or packing again) or "teacher" (a full-precision
    folder only: a quantized teacher would hand its rounding errors to the student)."""
    directory = Path(path)
    if directory.is_file():
        from .export import load_packed, load_packed_tokenizer

        if use == "teacher":
            raise ConfigError(f"{flag} {path}: a packed (quantized) file; the teacher must be a full-precision "
                              "checkpoint folder")
        backend = "fake" if use == "training" else "integer"
        model, tokenizer = load_packed(directory, backend=backend), load_packed_tokenizer(directory)
    elif directory.is_dir():
        model, tokenizer = Bart.from_pretrained(directory), Tokenizer.from_pretrained(directory)
    else:
        raise FileNotFoundError(f"{directory}: no such checkpoint folder or packed file")
    check_tokenizer(model, tokenizer, directory)
    return model, tokenizer


def refuse_quant_of_packed(args: argparse.Namespace, advice: str) -> None:
    """--quant rounds a full-precision model: a packed file (evaluate, export) is quantized already."""
    if args.quant and Path(args.model).is_file():
        raise ConfigError(f"--quant {args.quant}: {args.model} is a packed file, quantized already; {advice}")


def check_tokenizer(model: Bart, tokenizer: Tokenizer, where: str | Path) -> None:
    """A tokenizer that is not the model's makes garbage (or an IndexError): stop before that.

    Sizes must agree, except for extra special tokens beyond the model's rows (facebook/bart-large-cnn
    has 50264 rows and a 50265-token tokenizer: `<mask>` is the extra one)."""
    recorded = model.config.tokenizer_sha256
    if recorded is not None and recorded != tokenizer.fingerprint():
        raise ConfigError(f"{where}: the tokenizer is not the one the model was trained with (its vocabulary "
                          "differs); put the model's own tokenizer files beside it")
    vocab, size = model.config.vocab_size, tokenizer.vocab_size
    extra = tokenizer.convert_ids_to_tokens(range(vocab, size))
    if size < vocab or any(t != "<mask>" for t in extra):
        raise ConfigError(f"{where}: the tokenizer has {size} tokens but the model's vocab_size is {vocab}: "
                          "they do not belong together")
    for name in ("pad", "bos", "eos"):
        ours, theirs = getattr(model.config, f"{name}_token_id"), getattr(tokenizer, f"{name}_token_id")
        if ours != theirs:
            raise ConfigError(f"{where}: the model's {name}_token_id is {ours}, the tokenizer's is {theirs}")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The loop's settings; a bad one, or an output folder that would be refused, stops before any loading.
    Under torchrun, this is where the processes join (and only rank 0 looks at the folder: by the
    time another rank got here, rank 0 may have begun writing into it)."""
    check_data(args, "train", "valid")
    if args.lr is None:
        args.lr = RECIPES[args.recipe].lr
    distributed.init(args.device)
    if distributed.is_main():
        inputs = {**data_inputs(args.data), "the model": getattr(args, "model", None),
                  "the config": getattr(args, "config", None), "the tokenizer": getattr(args, "tokenizer", None),
                  "the teacher": getattr(args, "teacher", None), "the SeqKD data": getattr(args, "seqkd_data", None)}
        check_output(args.out, "--out", inputs, folder=True)
        check_out_dir(Path(args.out), args.resume or args.resume_anyway, args.overwrite)
    return TrainConfig(out_dir=args.out, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
                       grad_accum=args.grad_accum, lr=args.lr, warmup_steps=args.warmup_steps,
                       eval_every=args.eval_every, eval_examples=args.eval_examples, eval_beams=args.eval_beams,
                       metric=args.metric,
                       seed=args.seed, device=args.device, precision=args.precision, progress=progress(args))


def progress(args: argparse.Namespace) -> bool:
    """Progress bars unless --no-progress; train and evaluate draw them only on a terminal (a
    redirected log would fill with bar redraws)."""
    return not args.no_progress


def run(model: Bart, tokenizer: Tokenizer, args: argparse.Namespace, cfg: TrainConfig,
        batches: tuple[Batches, Batches, list] | None = None, **kwargs) -> dict:
    """train() with the command line's output-folder flags; every other flag is a setting of the run
    (a resume with another --lr, --data or --quant is refused unless --resume-anyway).
    batches: train_and_valid's, where the caller has read them already."""
    settings = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS and LATER_FLAGS.get(k, ...) != v}
    # the data read, by content: a resume after a split was changed in place is refused like a changed flag
    settings["data_files"] = fingerprint({"train": Path(args.data) / "train.jsonl",
                                          "valid": Path(args.data) / "valid.jsonl",
                                          "seqkd": getattr(args, "seqkd_data", None)})
    positions = model.config.max_position_embeddings
    fill_decoding(model, min(args.max_target_length + 1, positions))
    cfg.eval_max_length = resolve_config(model, {}).max_length  # evaluate as the checkpoint will decode
    if cfg.eval_max_length > positions:  # would fail at the first evaluation, after the training
        raise ConfigError(f"the checkpoint's generation_config has max_length {cfg.eval_max_length}, beyond its "
                          f"{positions} positions; lower it (or pass --max-target-length below {positions})")
    train_batches, valid_batches, valid = batches or train_and_valid(args, model, tokenizer)
    if getattr(args, "config", None) and not args.stream:
        hint_positions(model, train_batches)
    return train(model, tokenizer, train_batches, valid_batches, valid, cfg,
                 resume=args.resume or args.resume_anyway, overwrite=args.overwrite,
                 allow_changed_settings=args.resume_anyway, settings=settings, **kwargs)


def hint_positions(model: Bart, batches: Batches) -> None:
    """A fresh model whose position table is far longer than any sequence in its data carries
    rows it never uses, in full precision in every student packed from it: say so, with the size."""
    longest = max(max(len(p.input_ids), len(p.labels)) for p in batches.pairs)
    config = model.config
    if config.max_position_embeddings < 2 * longest:
        return
    rows = 2 * (config.max_position_embeddings + 2) * config.d_model  # encoder and decoder tables
    share = rows / sum(p.numel() for p in model.parameters())
    suggested = 1 << (longest - 1).bit_length()
    warnings.warn(MinidqWarning(
        f"max_position_embeddings {config.max_position_embeddings} is {config.max_position_embeddings / longest:.1f}x "
        f"the longest training sequence ({longest} tokens): the position tables are {share:.1%} of the model and "
        f"stay full precision in a packed student; max_position_embeddings {suggested} in the config would do"))


def fill_decoding(model: Bart, max_length: int) -> None:
    """Decoding settings for a checkpoint that has none (a model trained from --config): saved with
    it, so evaluate and generate decode as training evaluated, not with HF's 20-token default.
    max_length: the target length trained on, plus the decoder start token."""
    defaults = {"num_beams": 4, "max_length": max_length, "min_length": 0, "length_penalty": 1.0,
                "no_repeat_ngram_size": 0, "early_stopping": True}
    for name in ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id", "forced_eos_token_id"):
        if getattr(model.config, name) is not None:
            defaults[name] = getattr(model.config, name)
    if "max_new_tokens" in model.generation_config:
        del defaults["max_length"]
    model.fill_generation_config(defaults)


def train_and_valid(args: argparse.Namespace, model: Bart, tokenizer: Tokenizer) -> tuple[Batches, Batches, list]:
    """Batches of the train and valid splits, and the valid examples (for ROUGE/BLEU)."""
    # rows longer than the position table would index past it: cut them there (and say so)
    positions = model.config.max_position_embeddings
    source_length, target_length = min(args.max_source_length, positions), min(args.max_target_length, positions)
    splits = {}
    for split in ("train", "valid"):
        shuffle = split == "train"
        if not args.stream:
            examples = read(args, split)
            batches = make_batches(examples, tokenizer, source_length, target_length, args.batch_size,
                                   tokenizer.pad_token_id, shuffle=shuffle, seed=args.seed, where=split)
        else:  # read and tokenized batch by batch (minidq.stream), grouped by length in characters
            seqkd = split == "train" and getattr(args, "seqkd_data", None)  # written with source/target fields
            examples = (JsonlExamples(Path(args.seqkd_data), "source", "target", skip_bad=args.skip_bad_lines) if seqkd
                        else JsonlExamples(Path(args.data) / f"{split}.jsonl", args.source_field, args.target_field,
                                           skip_bad=args.skip_bad_lines))
            batches = Batches(LazyPairs(examples, tokenizer, source_length, target_length), args.batch_size,
                              tokenizer.pad_token_id, shuffle=shuffle, seed=args.seed, lengths=examples.lengths())
        splits[split] = (examples, batches)
    return splits["train"][1], splits["valid"][1], splits["valid"][0]


def cmd_train(args: argparse.Namespace) -> None:
    cfg = train_config(args)
    if args.config and args.model:
        raise ConfigError("give --model DIR (fine-tune a checkpoint) or --config FILE (a fresh model), not both")
    if args.model:
        model, tokenizer = load_model(args.model, use="training")
    else:
        if not args.config:
            raise ConfigError("give --model DIR (fine-tune a checkpoint) or --config FILE (a fresh model)")
        tokenizer_dir = args.tokenizer or args.data
        tokenizer = Tokenizer.from_pretrained(tokenizer_dir)
        # the ids the tokenizer uses, where the config leaves them out
        defaults = {"vocab_size": tokenizer.vocab_size, "pad_token_id": tokenizer.pad_token_id,
                    "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                    "decoder_start_token_id": tokenizer.eos_token_id}
        torch.manual_seed(args.seed)
        model = Bart(BartConfig.from_pretrained(args.config, defaults=defaults))
        check_tokenizer(model, tokenizer, f"{args.config} with the tokenizer of {tokenizer_dir} (leave vocab_size "
                                          "out of the config to take the tokenizer's)")
    if args.quant:  # quantization-aware training: the loop trains the latent weights through the STE
        quantize(model, QuantConfig.parse(args.quant, **quant_options(args)))
    figures = run(model, tokenizer, args, cfg)
    if not distributed.is_main():
        return
    if model.quant_config is not None:  # a quantized model is stored packed, as `distill` stores its student
        from .export import save_packed

        packed = Path(args.out) / "student.packed"
        save_packed(model.cpu(), packed, tokenizer)
        figures = {"packed": str(packed), "bytes": packed.stat().st_size, **figures}
    print(json.dumps({"out": args.out, **figures}))


def quant_options(args: argparse.Namespace) -> dict:
    """QuantConfig options: the --recipe's, then any flag given explicitly."""
    options = {**RECIPES[args.recipe].quant, "act_scale": args.act_scale}
    if args.no_clip:
        options["clip_val"] = None
    elif args.clip_val is not None:
        options["clip_val"] = args.clip_val
    if args.weight_per_row:
        options["weight_per_row"] = True
    return options


def cmd_distill(args: argparse.Namespace) -> None:
    """DQ-BART: student from teacher layers, quantized, trained on task + distillation losses, exported packed."""
    from .distill import DistillConfig, DistillLoss, make_student, parse_layers
    from .export import save_packed
    from .heads import prune_least_important

    cfg = train_config(args)
    encoder_layers, decoder_layers = parse_layers(args.layers)
    quant_config = QuantConfig.parse(args.quant, **quant_options(args), weight_method=args.weight_method,
                                     act_method=args.act_method)
    teacher, tokenizer = load_model(args.teacher, use="teacher", flag="--teacher")
    student = make_student(teacher, encoder_layers, decoder_layers)
    batches = train_and_valid(args, student, tokenizer)
    if args.prune_heads:  # once, before quantization: see minidq.heads
        prune_least_important(student, islice(batches[0].epoch(0), args.prune_batches), task_loss, args.prune_heads,
                              steps=args.prune_rounds)
    quantize(student, quant_config)
    if args.weighted:  # the authors' --weighted preset
        distill_cfg = replace(DistillConfig.weighted(), logits_kind=args.logits_loss, temperature=args.temperature)
    else:
        distill_cfg = DistillConfig(ce=args.w_ce, logits=args.w_logits, hidden=args.w_hidden,
                                    attention=args.w_attention, logits_kind=args.logits_loss,
                                    temperature=args.temperature, reduction=args.reduction)
    loss_fn = DistillLoss(teacher, distill_cfg, pruned_heads=student.config.pruned_attention_heads)
    figures = run(student, tokenizer, args, cfg, batches, loss_fn=loss_fn)
    if not distributed.is_main():
        return
    packed = Path(args.out) / "student.packed"
    save_packed(student.cpu(), packed, tokenizer)
    print(json.dumps({"out": args.out, "packed": str(packed), "bytes": packed.stat().st_size, **figures}))


def cmd_seqkd(args: argparse.Namespace) -> None:
    """Sequence-level KD data: the teacher's beam outputs for a split's sources (minidq.seqkd)."""
    from .seqkd import teacher_outputs, write_jsonl

    check_data(args, args.split)
    check_output(args.out, "--out", {**data_inputs(args.data), "the teacher": args.teacher}, overwrite=args.overwrite)
    teacher, tokenizer = load_model(args.teacher, use="teacher", flag="--teacher")
    examples = read(args, args.split)[: args.limit or None]
    distilled = teacher_outputs(teacher, tokenizer, examples, args.batch_size, args.max_source_length,
                                **generation_kwargs(args))
    write_jsonl(args.out, distilled)
    print(f"wrote {args.out}: the teacher's outputs for {len(distilled)} {args.split} sources")


def cmd_evaluate(args: argparse.Namespace) -> None:
    check_data(args, args.split)
    if args.predictions:  # a bad path fails now, not after all the generation
        check_output(args.predictions, "--predictions", {**data_inputs(args.data), "the model": args.model},
                     overwrite=args.overwrite)
    refuse_quant_of_packed(args, "--quant quantizes a full-precision checkpoint folder")
    model, tokenizer = load_model(args.model)
    if args.quant:  # post-training quantization: round the weights and activations, no training
        quantize(model, QuantConfig.parse(args.quant))
    examples = read(args, args.split)[: args.limit or None]
    facts = None if args.skip_bad_lines else read_facts(Path(args.data) / f"{args.split}.jsonl", len(examples))
    say_decoding(model, args)
    scores = evaluate(model, tokenizer, examples, metric=args.metric, batch_size=args.batch_size,
                      max_source_length=args.max_source_length, progress=progress(args), **generation_kwargs(args))
    preds = scores.pop("predictions")
    if args.predictions:
        Path(args.predictions).write_text("".join(p + "\n" for p in preds))
    names = ("rouge1", "rouge2", "rougeL", "rougeLsum") if args.metric == "rouge" else ("bleu", "chrf")
    if facts:  # the toy tasks list the facts each answer must state: score content beside ROUGE
        scores.update(fact_figures(preds, *facts))
        names += ("facts_exact", "facts_fact_f1")
    print(f"{args.split}: {len(examples)} examples, " + ", ".join(f"{n} {scores[n]:.2f}" for n in names)
          + f", {scores['examples_per_s']:.1f} examples/s")


def cmd_generate(args: argparse.Namespace) -> None:
    from .evaluate import predict

    texts = args.text or read_stdin()
    if not texts:
        raise DataError("nothing to generate from: give texts as arguments or lines on stdin")
    empty = [i for i, text in enumerate(texts, start=1) if not text.strip()]
    if empty:
        raise DataError(f"text {empty[0]} is empty: there is nothing to summarize" +
                        (f" ({len(empty)} empty texts)" if len(empty) > 1 else ""))
    model, tokenizer = load_model(args.model)
    say_decoding(model, args)
    for out in predict(model, tokenizer, texts, args.batch_size, max_source_length=args.max_source_length,
                       progress=False, **generation_kwargs(args)):
        print(out)


def say_decoding(model: Bart, args: argparse.Namespace) -> None:
    """What decides the outputs, on stderr before the work: the decoding settings (flags over the
    checkpoint's generation_config) and where sources are cut."""
    from .generate import describe

    source_length = min(args.max_source_length, model.config.max_position_embeddings)
    print(f"decoding: {describe(resolve_config(model, generation_kwargs(args)))}; sources cut at "
          f"{source_length} tokens", file=sys.stderr)


def read_stdin() -> list[str]:
    """The non-blank lines of stdin, which must be UTF-8 (a bad byte is `<stdin>:line:`, not a traceback)."""
    texts = []
    for lineno, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise DataError(f"<stdin>:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
        if line:
            texts.append(line)
    return texts


def cmd_export(args: argparse.Namespace) -> None:
    """Real low-bit storage: the (quantized) model as one packed file, then its footprint table."""
    from .export import footprint, format_footprint, save_packed

    check_output(args.out, "--out", {"the model": args.model}, overwrite=args.overwrite)
    refuse_quant_of_packed(args, "leave --quant out to pack it again (e.g. with other --packing)")
    model, tokenizer = load_model(args.model, use="training")  # a packed file: its codes, packed again
    if args.quant:  # post-training quantization first (a checkpoint trained with --quant already is)
        quantize(model, QuantConfig.parse(args.quant))
    q = model.quant_config
    if args.packing == "trits" and (q is None or 2 not in (q.weight_bits, q.embedding_bits)):
        # only 3-level codes (2-bit weights or embeddings) pack as trits; the rest would silently stay bits
        raise ConfigError(f"--packing trits: {q or 'an unquantized model'} has no 2-bit weights or embeddings, "
                          "the only codes that pack as trits; use --packing bits")
    save_packed(model, args.out, tokenizer, packing=args.packing, float_dtype=args.float_dtype,
                int8_positions=args.int8_positions)
    print(format_footprint(footprint(args.out)))


def cmd_info(args: argparse.Namespace) -> None:
    from .export import footprint, format_footprint, read_packed
    from .heads import heads_table

    # reading a packed file checks its checksum: the table of a damaged file would mislead
    metadata = {path: read_packed(path)[0] for path in (args.path, args.teacher) if path and Path(path).is_file()}
    print(format_footprint(footprint(args.path), footprint(args.teacher) if args.teacher else None))
    if args.path in metadata:  # a packed student: its attention heads too
        print(heads_table(BartConfig.from_dict(json.loads(metadata[args.path]["config"]))))


def cmd_tokenizer(args: argparse.Namespace) -> None:
    """Train a byte-level BPE tokenizer on a data folder's train split (sources and targets)."""
    check_data(args, "train")
    out = Path(args.out or args.data)
    existing = [n for n in ("tokenizer.json", "vocab.json") if (out / n).is_file()]
    if existing and not args.overwrite:
        raise OutputError(f"{out}: already holds a tokenizer ({', '.join(existing)}); --overwrite replaces it")
    low = 256 + 5  # every byte, plus <s> <pad> </s> <unk> <mask>
    if args.vocab_size < low:
        raise ConfigError(f"--vocab-size {args.vocab_size}: at least {low} (256 bytes and 5 special tokens)")
    examples = read(args, "train")
    tokenizer = Tokenizer.train((text for ex in examples for text in (ex.source, ex.target)), args.vocab_size,
                                min_frequency=args.min_frequency)
    tokenizer.save_pretrained(out)
    print(f"wrote {out}: a tokenizer of {tokenizer.vocab_size} tokens, learned from {len(examples)} examples")
    if tokenizer.vocab_size < args.vocab_size:
        warnings.warn(MinidqWarning(
            f"asked for {args.vocab_size} tokens, got {tokenizer.vocab_size}: no more pairs occur at least "
            f"--min-frequency {args.min_frequency} times in this text; that is the vocabulary it supports "
            "(a lower --min-frequency adds rare pieces, more text adds common ones)"))


def cmd_demo(args: argparse.Namespace) -> None:
    """The flags into a DemoConfig, then the tables (minidq.demo.run)."""
    from .demo import VARIANT_ROWS, DemoConfig, run
    from .distill import DistillConfig

    cfg = DemoConfig.quick() if args.quick else DemoConfig()
    cfg.out, cfg.progress, cfg.shipped = args.out, progress(args), not args.no_shipped and not args.variants
    cfg.full = args.full
    if args.rows:
        cfg.rows = tuple(args.rows.split(","))
    if args.task != "all":
        cfg.tasks = (args.task,)
    if args.reduction:
        cfg.distill = DistillConfig(reduction=args.reduction)
    for name in ("teacher", "data", "steps", "test_examples", "device", "seed", "seqkd_data", "workers"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    if args.variants:  # every row trains on the same first steps x batch examples, which the teacher decodes once
        cfg.train_examples = cfg.steps * cfg.batch_size
        cfg.rows = tuple(args.rows.split(",")) if args.rows else tuple(r.name for r in VARIANT_ROWS)
    run(cfg)


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder: best/, last.ckpt, log.jsonl (new or empty)")
    p.add_argument("--epochs", type=at_least(1), default=10, help="passes over the training split")
    p.add_argument("--max-steps", type=at_least(0), default=0, help="optimizer steps (0 = all epochs)")
    p.add_argument("--batch-size", type=at_least(1), default=32,
                   help="examples per batch, in all (under torchrun, split across the processes)")
    p.add_argument("--grad-accum", type=at_least(1), default=1, help="batches per optimizer step")
    p.add_argument("--lr", type=number(0, above=True), help="peak learning rate (AdamW; default: the --recipe's, "
                                                             "5e-4 for paper, 1e-4 for minidq)")
    p.add_argument("--warmup-steps", type=at_least(0), help="linear warm-up steps (default: 6%% of the run)")
    p.add_argument("--eval-every", type=at_least(1), default=500,
                   help="steps between evaluations (validation loss and score) and checkpoints")
    p.add_argument("--eval-examples", type=at_least(0), default=100,
                   help="validation examples generated for the metric")
    p.add_argument("--eval-beams", type=at_least(1), default=1,
                   help="beams for those (1, greedy: a cheap signal for choosing checkpoints; "
                        "`evaluate` scores with the checkpoint's own decoding settings)")
    p.add_argument("--metric", choices=("rouge", "bleu"), default="rouge", help="the score reported")
    p.add_argument("--seed", type=at_least(0, SEED_MAX), default=0, help="batch order, dropout, initialization")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps; under torchrun, cuda is each "
                                                   "process's own GPU")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: forward under autocast, matmuls in bfloat16 (weights, optimizer and quantizers "
                        "stay fp32)")
    p.add_argument("--recipe", choices=tuple(RECIPES), default="paper",
                   help="quantization recipe (minidq.recipes): paper = DQ-BART's +-2.5 clamp and per-tensor weight "
                        "scales; minidq = no clamp, per-row weight scales, lr 1e-4")
    p.add_argument("--clip-val", type=number(0, above=True), help="clamp weights and activations to +-this "
                                                                  "before quantizing (default: the --recipe's)")
    p.add_argument("--no-clip", action="store_true", help="no clamp: max-abs scales cover every value")
    p.add_argument("--weight-per-row", action="store_true",
                   help="one weight scale per output row (default: the --recipe's)")
    p.add_argument("--act-scale", choices=("tensor", "token"), default="tensor",
                   help="with --quant: one activation scale per tensor (DQ-BART's; depends on the batch, so on "
                        "the number of processes) or per token")
    p.add_argument("--stream", action="store_true",
                   help="read the JSONL through line offsets and tokenize batch by batch (datasets larger than "
                        "memory); batches grouped by length in characters, not tokens")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.ckpt, with the same settings")
    p.add_argument("--resume-anyway", action="store_true",
                   help="continue from OUT/last.ckpt even though settings (lr, batch size, quantization...) changed")
    p.add_argument("--overwrite", action="store_true", help="replace the run in a non-empty --out")


def add_train_command(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("train", parents=[common],
                       help="fine-tune a checkpoint (or train a fresh config) on a JSONL dataset")
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--model", help="HF checkpoint folder to start from (config, weights, tokenizer)")
    p.add_argument("--config", help="config.json of a fresh model (instead of --model)")
    p.add_argument("--tokenizer", help="tokenizer folder for --config (default: the --data folder)")
    p.add_argument("--quant", help="W-E-A bits, e.g. 2-2-8: quantization-aware training (QAT)")
    p.set_defaults(func=cmd_train)


def add_distill_command(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("distill", parents=[common],
                       help="DQ-BART: distill and quantize a student of the teacher, export it packed")
    add_data_args(p)
    add_train_args(p)
    p.add_argument("--teacher", required=True, help="the fine-tuned teacher (HF checkpoint folder)")
    p.add_argument("--layers", default="6-6", help="student encoder-decoder layers, e.g. 6-3 (default: 6-6)")
    p.add_argument("--quant", default="2-2-8", help="W-E-A bits of the student (default: 2-2-8)")
    p.add_argument("--weight-method", choices=("max", "lsq"), default="max",
                   help="weight scales: max-abs / TWN (DQ-BART, default) or learned (LSQ)")
    p.add_argument("--act-method", choices=("max", "lsq", "elastic"), default="max",
                   help="activation scales: dynamic max-abs (DQ-BART, default), learned (LSQ), or learned "
                        "scale and offset (elastic, TBT)")
    p.add_argument("--w-ce", type=number(0), default=1.0, help="weight of the task loss")
    p.add_argument("--w-logits", type=number(0), default=1.0, help="weight of the logits term (0 = off)")
    p.add_argument("--w-hidden", type=number(0), default=1.0, help="weight of the hidden-state term (0 = off)")
    p.add_argument("--w-attention", type=number(0), default=1.0, help="weight of the attention-map term (0 = off)")
    p.add_argument("--logits-loss", choices=("mse", "kl"), default="mse",
                   help="the logits term: MSE (the authors') or KL at --temperature")
    p.add_argument("--temperature", type=number(0, above=True), default=2.0, help="for --logits-loss kl")
    p.add_argument("--reduction", choices=("mean", "sum"), default="mean",
                   help="distillation terms averaged over layers (default) or summed as in the authors' code")
    p.add_argument("--prune-heads", type=number(0), default=0.0,
                   help="remove this fraction of the student's attention heads, the least important by "
                        "Michel et al.'s gradient measure, before training (default: 0, none)")
    p.add_argument("--prune-batches", type=at_least(1), default=16,
                   help="training batches the head importance is measured on")
    p.add_argument("--prune-rounds", type=at_least(1), default=1,
                   help="prune in this many rounds, measuring the importances again after each (default: 1)")
    p.add_argument("--seqkd-data", help="sequence-level KD: train on this JSONL of the teacher's outputs "
                                        "(minidq seqkd) instead of the train split; valid stays as it is")
    p.add_argument("--weighted", action="store_true",
                   help="the authors' --weighted preset: summed terms, logits 0.8, hidden and attention 3 "
                        "(overrides --w-* and --reduction)")
    p.set_defaults(func=cmd_distill)


def add_seqkd_command(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("seqkd", parents=[common],
                       help="sequence-level KD data: write the teacher's beam outputs for a split's sources as JSONL")
    add_data_args(p)
    add_generation_args(p)
    p.add_argument("--teacher", required=True, help="the fine-tuned teacher (HF checkpoint folder)")
    p.add_argument("--split", default="train", help="the split whose sources the teacher decodes")
    p.add_argument("--limit", type=at_least(0), default=0, help="first N examples only (0 = all)")
    p.add_argument("--out", required=True,
                   help="the JSONL file to write (source: the split's, target: the teacher's output)")
    p.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")
    p.set_defaults(func=cmd_seqkd)


def add_evaluate_command(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("evaluate", parents=[common], help="generate on a split and print ROUGE (or BLEU) and speed")
    add_data_args(p)
    add_generation_args(p)
    p.add_argument("--model", required=True, help="HF checkpoint folder, or a packed file (minidq export)")
    p.add_argument("--split", default="test", help="the split to score")
    p.add_argument("--limit", type=at_least(0), default=0, help="first N examples only (0 = all)")
    p.add_argument("--metric", choices=("rouge", "bleu"), default="rouge", help="the score reported")
    p.add_argument("--predictions", help="write the generated outputs here, one per line")
    p.add_argument("--overwrite", action="store_true", help="replace the --predictions file if it exists")
    p.add_argument("--quant", help="W-E-A bits, e.g. 2-2-8: post-training quantization (PTQ) before evaluating")
    p.set_defaults(func=cmd_evaluate)


def add_generate_command(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("generate", parents=[common],
                       help="summarize texts given as arguments, or one per line on stdin")
    add_generation_args(p)
    p.add_argument("--model", required=True, help="HF checkpoint folder, or a packed file (minidq export)")
    p.add_argument("--max-source-length", type=at_least(2), default=256,
                   help="source tokens kept (and at most the model's positions)")
    p.add_argument("text", nargs="*", help="input texts (default: read lines from stdin)")
    p.set_defaults(func=cmd_generate)


def add_export_command(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("export", parents=[common], help="store a quantized model in real low-bit form: one packed file")
    p.add_argument("--model", required=True, help="HF checkpoint folder (or a packed file)")
    p.add_argument("--quant", help="W-E-A bits, e.g. 2-2-8: post-training quantization before packing")
    p.add_argument("--out", required=True, help="the packed file to write, e.g. student.packed")
    p.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")
    p.add_argument("--packing", choices=("bits", "trits"), default="bits",
                   help="3-level codes at 2 bits (4 per byte) or as trits (5 per byte, 1.6 bits)")
    p.add_argument("--float-dtype", choices=("fp16", "fp32"), default="fp16",
                   help="storage of what is not quantized (norms, biases, positions); fp32: outputs identical")
    p.add_argument("--int8-positions", action="store_true", help="position tables as 8-bit codes (lossy)")
    p.set_defaults(func=cmd_export)


def add_info_command(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("info", parents=[common],
                       help="where the bytes of a packed file (or an HF folder) go, and the compression")
    p.add_argument("path", help="a packed file, or an HF checkpoint folder (its model.safetensors)")
    p.add_argument("--teacher", help="an fp32 HF checkpoint folder to compare against")
    p.set_defaults(func=cmd_info)


def add_tokenizer_command(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tokenizer", parents=[common],
                       help="train a byte-level BPE tokenizer for a data folder (for train --config)")
    p.add_argument("--data", required=True, help="folder with train.jsonl")
    p.add_argument("--vocab-size", type=at_least(1), required=True, help="tokens, special ones included")
    p.add_argument("--out", help="folder to write it into (default: the --data folder, where train --config looks)")
    p.add_argument("--source-field", default="source", help="JSON field of the input text (default: source)")
    p.add_argument("--target-field", default="target", help="JSON field of the output text (default: target)")
    p.add_argument("--skip-bad-lines", action="store_true", help="drop malformed lines (counted) instead of stopping")
    p.add_argument("--min-frequency", type=at_least(1), default=2, help="merge pairs seen at least this often")
    p.add_argument("--overwrite", action="store_true", help="replace a tokenizer already in the folder")
    p.set_defaults(func=cmd_tokenizer)


def add_demo_command(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("demo", parents=[common], help="the whole pipeline on the shipped teacher and data")
    p.add_argument("--out", default="runs/demo", help="output folder for the results table")
    p.add_argument("--quick", action="store_true", help="a seconds-long version (for tests)")
    p.add_argument("--task", choices=("all", "summarization", "qa", "translation"), default="all",
                   help="one task's table, or all three (default)")
    p.add_argument("--rows", help="comma-separated rows to train here, e.g. PTQ-2-2-8-6-6,DQ-2-2-8-6-1 (default: "
                                  "PTQ, QAT and DQ 2-2-8 6-6, and the paper's rows no shipped student stands for)")
    p.add_argument("--teacher", help="teacher checkpoint folder (default: data_samples/TASK/teacher)")
    p.add_argument("--data", help="data folder with train/valid/test.jsonl (default: data_samples/TASK)")
    p.add_argument("--no-shipped", action="store_true",
                   help="leave out the students shipped in data_samples/TASK/students/ (trained to a full budget)")
    p.add_argument("--full", action="store_true",
                   help="retrain every shipped student from its record first (hours on a CPU) and score those: "
                        "the shipped rows, reproduced")
    p.add_argument("--variants", action="store_true", help="beyond the paper: sequence-level KD, LSQ, elastic "
                   "and KL rows against plain DQ at 2-2-8 6-6 and 6-3 (minidq.variants), instead of the paper's rows")
    p.add_argument("--seqkd-data", help="the teacher's outputs for the training sources (minidq seqkd); "
                                        "default: decoded once into OUT/TASK/seqkd_train.<teacher hash>.jsonl")
    p.add_argument("--reduction", choices=("mean", "sum"), help="how distillation terms add up (default: mean)")
    p.add_argument("--seed", type=at_least(0, SEED_MAX), help="seed of the students' training (default: 0)")
    p.add_argument("--steps", type=at_least(1), help="optimizer steps per trained row")
    p.add_argument("--test-examples", type=at_least(0), help="score the first N test examples (0 = all)")
    p.add_argument("--device", help="cpu (default) or cuda")
    p.add_argument("--workers", type=at_least(0), help="processes training rows side by side, one thread each "
                   "(default: one per CPU core; 1: in this process)")
    p.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="minidq", description="DQ-BART: distill and quantize BART, from scratch.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the traceback of an error")
    common.add_argument("--no-progress", action="store_true",
                        help="no progress bars (there are none either when stderr is not a terminal)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_train_command, add_distill_command, add_seqkd_command, add_evaluate_command,
                add_generate_command, add_export_command, add_info_command, add_tokenizer_command, add_demo_command):
        add(sub, common)
    return parser


def one_line(e: BaseException) -> str:
    """An error as one line: an OS error as `file: reason`, a multi-line message joined with '; '."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return "; ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """minidq's warnings (and any other) as one line on stderr, like its errors."""
    print(f"minidq: warning: {one_line(message) if isinstance(message, Warning) else message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", MinidqWarning)
            warnings.showwarning = show_warning
            args.func(args)
    except KeyboardInterrupt as e:
        if args.debug:
            raise
        print("minidq: interrupted" + (f": {one_line(e)}" if str(e) else ""), file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if args.debug:
            raise
        print(f"minidq: error: {one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug: still one line, but say how to see more
        if args.debug:
            raise
        print(f"minidq: error: unexpected {type(e).__name__}: {one_line(e)} (a bug in minidq? rerun with --debug "
              "for the traceback)", file=sys.stderr)
        return 1
    return 0
