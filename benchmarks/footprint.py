"""Footprint of real packed files at BART-base shapes, beside the paper's own accounting.

DQ-BART counts BART-base (6-6 layers, d_model 768, vocab 50265) as fp32 532.0 MiB, 8-8-8
138.1 MiB (3.9x) and 2-2-8 39.6 MiB (13.4x): linear weights and the token embedding at b bits;
positions, biases and norms left fp32. Its 16.5x and 27.7x come from students with fewer layers.

Here every figure is the size of a file on disk: a model with random weights of those shapes
(sizes do not depend on the values) is quantized, frozen, written by `save_packed`, and
accounted by `footprint`; the ratio is against `save_pretrained`'s fp32 model.safetensors of the
6-6 model. The embedded tokenizer is left out (none is written here). Then the same for the
shipped toy teacher, whose small d_model makes scales, norms, biases and positions weigh more.

    python benchmarks/footprint.py      # a few minutes on a CPU (mostly quantizing 140 M weights)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent

from minidq import Bart, BartConfig
from minidq.distill import parse_layers
from minidq.export import Footprint, footprint, freeze, save_packed
from minidq.quant import quantize

MIB = 2 ** 20
CODE_ROWS = ("token embedding", "encoder linears", "decoder linears")
# (layers, W-E-A) -> [(packing, float dtype, int8 positions, the paper's figure or the target)]
SETTINGS = {
    ("6-6", "8-8-8"): [("bits", "fp32", False, "paper 138.1 MiB, 3.9x"), ("bits", "fp16", False, "")],
    ("6-6", "2-2-8"): [("bits", "fp32", False, "paper 39.6 MiB, 13.4x"), ("bits", "fp16", False, "target >= 14.5x"),
                       ("bits", "fp16", True, ""), ("trits", "fp16", False, ""),
                       ("trits", "fp16", True, "target >= 18x")],
    ("6-3", "2-2-8"): [("bits", "fp16", False, ""), ("trits", "fp16", True, "")],
    ("6-1", "2-2-8"): [("bits", "fp16", True, ""), ("trits", "fp16", True, "")],
    ("3-1", "2-2-8"): [("bits", "fp16", True, ""), ("trits", "fp16", True, "target >= 27.7x")],
}


def bart_base(layers: str) -> Bart:
    encoder, decoder = parse_layers(layers)
    torch.manual_seed(0)
    return Bart(BartConfig(encoder_layers=encoder, decoder_layers=decoder)).eval()  # defaults: BART-base shapes


def other_bytes(fp: Footprint) -> int:
    """Everything that is not a weight code: positions, norms, biases, scales, metadata, container."""
    return fp.model_bytes - sum(fp.rows[r][1] for r in CODE_ROWS)


def table(rows: list[tuple], reference: int, title: str) -> None:
    print(f"\n{title}")
    print(f"{'layers':<7}{'W-E-A':<7}{'codes':<7}{'floats':<7}{'positions':<10}{'MiB':>9}{'ratio':>8}"
          f"{'not codes':>11}  paper / target")
    for layers, quant, packing, floats, int8_positions, note, fp in rows:
        print(f"{layers:<7}{quant:<7}{packing:<7}{floats:<7}{'int8' if int8_positions else floats:<10}"
              f"{fp.model_bytes / MIB:>9.2f}{reference / fp.model_bytes:>7.2f}x"
              f"{other_bytes(fp) / fp.model_bytes:>10.1%}  {note}")


def measure(settings: dict, build, tmp: Path) -> list[tuple]:
    rows = []
    for (layers, quant), variants in settings.items():
        model = freeze(quantize(build(layers), quant))  # codes computed once, reused by every save
        for packing, floats, int8_positions, note in variants:
            file = tmp / "model.packed"
            save_packed(model, file, packing=packing, float_dtype=floats, int8_positions=int8_positions)
            rows.append((layers, quant, packing, floats, int8_positions, note, footprint(file)))
    return rows


def shares(fp: Footprint) -> dict[str, float]:
    return {name: nbytes / fp.model_bytes for name, (_, nbytes) in fp.rows.items() if name != "tokenizer"}


def main() -> None:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bart_base("6-6").save_pretrained(tmp / "fp32")
        fp32 = (tmp / "fp32" / "model.safetensors").stat().st_size
        print(f"fp32 BART-base (6-6) model.safetensors: {fp32 / MIB:.2f} MiB (paper: 532.0 MiB)")
        big = measure(SETTINGS, bart_base, tmp)
        table(big, fp32, "BART-base shapes, ratio against the fp32 6-6 file")

        teacher_dir = ROOT / "data_samples" / "summarization" / "teacher"
        teacher = footprint(teacher_dir)
        toy_settings = {("6-6", "8-8-8"): [("bits", "fp16", False, "")],
                        ("6-6", "2-2-8"): [("bits", "fp32", False, ""), ("bits", "fp16", False, ""),
                                           ("trits", "fp16", True, "")]}
        toy = measure(toy_settings, lambda layers: Bart.from_pretrained(teacher_dir), tmp)
        table(toy, teacher.file_bytes, f"shipped toy teacher (d_model 128, vocab 4000; fp32 file "
                                        f"{teacher.file_bytes / MIB:.2f} MiB), ratio against its model.safetensors")

    def pick(rows: list[tuple]) -> Footprint:  # 6-6, 2-2-8, trits, fp16, int8 positions
        return next(r[-1] for r in rows if r[:5] == ("6-6", "2-2-8", "trits", "fp16", True))

    big_fp, toy_fp = pick(big), pick(toy)
    print("\nwhere the bytes go at 2-2-8, trits, fp16, int8 positions (share of the model bytes)")
    print(f"{'component':<18}{'BART-base':>11}{'toy':>9}")
    big_shares, toy_shares = shares(big_fp), shares(toy_fp)
    for name in big_shares:
        print(f"{name:<18}{big_shares[name]:>11.1%}{toy_shares[name]:>9.1%}")
    print(f"(took {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
