"""Generation latency and memory: fp32 teacher, transformers (fp32 and dynamic int8), integer students.

Side by side, on one machine, in one run: for each shape (BART-base with random weights, and the
shipped toy teacher), each decoding setting (greedy and beam 4, batch 1 and 8) and each model, one
`generate` call of 32 new tokens (min_length keeps EOS away); the models take turns (interleaved)
for --repeats rounds and the table shows each one's median and its speed-up over minidq's fp32
teacher. Students are built the way a user gets them: layers copied from the teacher
(make_student), quantized (PTQ; speed does not depend on the values), written with save_packed
and read back with load_packed, i.e. on the integer path.

Memory: each model is loaded alone in a fresh subprocess, which reports the bytes of the model's
tensors, the resident memory that loading and one small forward pass added (torch, transformers
and minidq imported first), and the peak resident memory of the whole process (VmHWM);
(0.25) = a quarter of the fp32 teacher's figure.

    python benchmarks/latency.py                 # 1 thread; about 15 minutes on a 2-core CPU
    python benchmarks/latency.py --quick         # toy teacher only, 2 rounds: a smoke run
    python benchmarks/latency.py --shapes base --settings 1x1,4x8   # BART-base: greedy batch 1, beam 4 batch 8

The pruned students (minidq.heads) keep the first half of every attention module's heads: their
speed does not depend on which heads they keep.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from minidq import Bart, BartConfig, QuantConfig, Tokenizer
from minidq.distill import make_student
from minidq.export import load_packed, save_packed
from minidq.quant import quantize

BART_BASE = dict(vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
                 decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
                 max_position_embeddings=1024, dropout=0.0)
# W-E-A, encoder and decoder layers, the fraction of attention heads pruned (minidq.heads)
STUDENTS = [("8-8-8", 6, 6, 0.0), ("2-2-8", 6, 6, 0.0), ("2-2-8", 6, 6, 0.5), ("2-2-8", 6, 3, 0.0),
            ("2-2-8", 6, 3, 0.5), ("2-2-8", 6, 1, 0.0)]
SETTINGS = [(1, 1), (1, 8), (4, 1), (4, 8)]  # (beams, batch)
NEW_TOKENS = 32
SOURCE_LENGTH = 64  # tokens per random input at BART-base shape


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux): VmRSS now, VmHWM its peak."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def load(kind: str, path: str):
    """One benchmarked model, as a user would load it."""
    if kind == "minidq":
        return Bart.from_pretrained(path).eval()
    if kind.startswith("transformers"):
        import transformers
        model = transformers.BartForConditionalGeneration.from_pretrained(path).eval()
        if kind == "transformers-int8":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return model
    return load_packed(path)  # "packed": the integer path


def tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes of every tensor the model holds, each storage once (tied weights, packed int8 weights)."""
    seen, total = set(), 0

    def add(value) -> None:
        nonlocal total
        if isinstance(value, (tuple, list)):
            for v in value:
                add(v)
        elif isinstance(value, torch.Tensor) and value.data_ptr() not in seen:
            seen.add(value.data_ptr())
            total += value.numel() * value.element_size()
    add(list(model.state_dict(keep_vars=True).values()))
    return total


def measure_memory(kind: str, path: str) -> dict:
    """In a fresh interpreter: bytes of the model's tensors; resident memory that loading and one
    small forward pass added (libraries imported first; the forward touches every weight, since
    transformers maps safetensors files lazily); and the peak resident memory of the process."""
    code = (f"import sys, json, gc, ctypes; sys.path.insert(0, {str(ROOT)!r}); "
            f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
            "import torch, transformers, latency\n"
            "torch.set_num_threads(1); gc.collect(); base = latency.status_bytes('VmRSS')\n"
            f"model = latency.load({kind!r}, {path!r})\n"
            "ids = torch.tensor([[0, 5, 6, 2]])\n"
            "with torch.no_grad(): model(input_ids=ids, decoder_input_ids=ids)\n"
            "gc.collect(); ctypes.CDLL('libc.so.6').malloc_trim(0)  # hand freed heap back: count what is held\n"
            "print(json.dumps({'tensors': latency.tensor_bytes(model), 'rss': latency.status_bytes('VmRSS') - base,"
            " 'peak': latency.status_bytes('VmHWM')}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def generate(model, ids: torch.Tensor, mask: torch.Tensor, beams: int) -> torch.Tensor:
    options = dict(num_beams=beams, max_length=1 + NEW_TOKENS, min_length=NEW_TOKENS, no_repeat_ngram_size=0,
                   length_penalty=1.0, early_stopping=False)
    if isinstance(model, Bart):
        return model.generate(ids, mask, **options)
    return model.generate(input_ids=ids, attention_mask=mask, do_sample=False, **options)


def build(teacher: Bart, directory: Path, with_transformers: bool) -> dict[str, tuple[str, str]]:
    """name -> (kind, path) of every model of one shape, written into `directory`."""
    teacher.save_pretrained(directory / "teacher")
    models = {"minidq fp32 teacher": ("minidq", str(directory / "teacher"))}
    if with_transformers:
        models["transformers fp32"] = ("transformers", str(directory / "teacher"))
        models["transformers dynamic int8"] = ("transformers-int8", str(directory / "teacher"))
    for quant, enc, dec, pruned in STUDENTS:
        student = make_student(teacher, enc, dec)
        if pruned:  # which heads does not change the speed: every module keeps its first ones
            student.prune_heads({path: list(range(round(student.config.attention_heads(path) * (1 - pruned)),
                                                  student.config.attention_heads(path)))
                                 for path in student.config.attention_paths()})
        quantize(student, QuantConfig.parse(quant))
        name = f"{quant}-{enc}-{dec}" + (f", {pruned:.0%} of heads pruned" if pruned else "")
        path = directory / f"{name.replace(', ', '-').replace(' ', '-').replace('%', 'pct')}.packed"
        save_packed(student, path)
        models[f"minidq integer {name}"] = ("packed", str(path))
    return models


def benchmark(title: str, models: dict[str, tuple[str, str]], ids: torch.Tensor, mask: torch.Tensor,
              repeats: int, settings: list[tuple[int, int]]) -> list[str]:
    lines = [f"### {title}", ""]
    memory = {name: measure_memory(kind, path) for name, (kind, path) in models.items()}
    loaded = {name: load(kind, path) for name, (kind, path) in models.items()}
    header = "| model | " + " | ".join(f"{'greedy' if b == 1 else f'beam {b}'}, batch {n}" for b, n in settings)
    lines += [header + " | tensors | RSS after load | peak RSS |", "|---" * (len(settings) + 4) + "|"]
    times: dict[tuple[str, int, int], list[float]] = {}
    with torch.inference_mode():
        for beams, batch in settings:
            for name, model in loaded.items():  # warm-up: first calls allocate
                generate(model, ids[:batch], mask[:batch], beams)
            for _ in range(repeats):  # interleaved: every model once per round
                for name, model in loaded.items():
                    start = time.perf_counter()
                    generate(model, ids[:batch], mask[:batch], beams)
                    times.setdefault((name, beams, batch), []).append(time.perf_counter() - start)
            print(f"  {title}: beams {beams}, batch {batch} done", file=sys.stderr, flush=True)
    base_name = "minidq fp32 teacher"
    for name in loaded:
        cells = []
        for beams, batch in settings:
            median = statistics.median(times[(name, beams, batch)])
            ratio = statistics.median(times[(base_name, beams, batch)]) / median
            cells.append(f"{median:.3f} s ({ratio:.1f}x)")
        mem, base = memory[name], memory[base_name]
        lines.append(f"| {name} | " + " | ".join(cells) + "".join(
            f" | {mem[k] / 2**20:.0f} MiB ({mem[k] / base[k]:.2f})" for k in ("tensors", "rss", "peak")) + " |")
    return lines + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="toy teacher only, 2 rounds")
    p.add_argument("--no-transformers", action="store_true", help="leave out the transformers rows")
    p.add_argument("--shapes", default="toy,base", help="toy (the shipped teacher), base (BART-base), or both")
    p.add_argument("--settings", default=",".join(f"{b}x{n}" for b, n in SETTINGS),
                   help="decoding settings, BEAMSxBATCH, comma-separated")
    args = p.parse_args()
    settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
    shapes = ["toy"] if args.quick else args.shapes.split(",")
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    with_hf = not args.no_transformers
    lines = [f"torch {torch.__version__}, {args.threads} thread(s), {NEW_TOKENS} new tokens per input, "
             f"median of {repeats} interleaved rounds; (Nx) = speed-up over minidq's fp32 teacher. Students: "
             f"PTQ with QuantConfig defaults (act_scale={QuantConfig().act_scale!r}), packed, loaded by load_packed "
             f"(integer path).", ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        teacher_dir = ROOT / "data_samples" / "summarization" / "teacher"
        toy = Bart.from_pretrained(teacher_dir).eval()
        tok = Tokenizer.from_pretrained(teacher_dir)
        sources = [json.loads(line)["source"] for line in (ROOT / "data_samples/summarization/test.jsonl").open()][:8]
        enc = tok(sources)
        (tmp / "toy").mkdir()
        if "toy" in shapes:
            lines += benchmark(f"shipped teacher ({teacher_dir.relative_to(ROOT)}: d_model {toy.config.d_model}, "
                               f"vocab {toy.config.vocab_size}, 6-6), summarization test inputs",
                               build(toy, tmp / "toy", with_hf), enc["input_ids"], enc["attention_mask"], repeats,
                               settings)
        if "base" in shapes:
            torch.manual_seed(0)
            base = Bart(BartConfig(**BART_BASE)).eval()
            ids = torch.randint(4, BART_BASE["vocab_size"], (8, SOURCE_LENGTH))
            ids[:, 0], ids[:, -1] = 0, 2  # <s> ... </s>
            (tmp / "base").mkdir()
            models = build(base, tmp / "base", with_hf)
            del base
            lines += benchmark(f"BART-base shapes, random weights, {SOURCE_LENGTH}-token random inputs", models,
                               ids, torch.ones_like(ids), repeats, settings)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
