"""One quantized linear layer, four ways, side by side: where the integer path's time goes.

At BART-base shapes (768 -> 3072 as fc1, 3072 -> 768 as fc2) and decoding-sized inputs (1, 8
and 64 tokens), on ternary weights with DQ-BART's 8-bit activations (max-abs, one scale per
tensor, clip 2.5):

    fp32            F.linear on the fp32 weight (what the teacher runs)
    integer, general  minidq.deploy.intinfer.int_linear: activation codes by symmetric_codes, exact sums
                    on fbgemm, then rescale (the path for per-token and learned input scales)
    integer, fused  minidq.deploy.intinfer.FusedInt8Linear: the path of DQ-BART's input quantizer
    torch dynamic int8  torch.ops.quantized.linear_dynamic (what quantize_dynamic runs)

Every variant runs in turn in each round (interleaved), the table shows medians per call and the
speed-up over fp32 measured in the same run.

    python benchmarks/int_linear.py                 # 1 thread, about a minute
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import torch
import torch.nn.functional as F


from minidq.deploy.intinfer import FusedInt8Linear, Int8Weight, fbgemm_available, int_linear
from minidq.fakequant import Quantizer, dequantize, ternary_codes


def variants(K: int, N: int) -> dict:
    torch.manual_seed(0)
    weight, bias = torch.randn(N, K) * 0.05, torch.randn(N) * 0.1
    codes, scale = ternary_codes(weight, False, None)
    act = Quantizer("symmetric", 8, clip=2.5)
    general, fused = Int8Weight(codes), FusedInt8Linear(codes, scale, act)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        dynamic = torch.ops.quantized.linear_prepack(
            torch.quantize_per_tensor(dequantize(codes, scale), float(scale), 0, torch.qint8), bias)
    return {
        "fp32": lambda x: F.linear(x, weight, bias),
        "integer, general": lambda x: int_linear(x, act, general, scale) + bias,
        "integer, fused": lambda x: fused(x) + bias,
        "torch dynamic int8": lambda x: torch.ops.quantized.linear_dynamic(x, dynamic, True),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if not fbgemm_available(torch.zeros(1, dtype=torch.int8)):
        sys.exit("fbgemm is not available on this machine: the integer paths would fall back to _int_mm")
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.rounds} interleaved rounds; "
          "(Nx) = speed-up over fp32 in the same run\n")
    for K, N, name in ((768, 3072, "fc1 768 -> 3072"), (3072, 768, "fc2 3072 -> 768")):
        fns = variants(K, N)
        print(f"### {name}\n\n| tokens | " + " | ".join(fns) + " |\n|---" * 1 + "|---" * len(fns) + "|")
        for M in (1, 8, 64):
            x = 1.5 * torch.randn(M, K)
            calls = max(5, 400 // M)
            times: dict[str, list[float]] = {k: [] for k in fns}
            with torch.inference_mode():
                for fn in fns.values():
                    fn(x)  # warm-up
                for _ in range(args.rounds):
                    for k, fn in fns.items():
                        start = time.perf_counter()
                        for _ in range(calls):
                            fn(x)
                        times[k].append((time.perf_counter() - start) / calls)
            base = statistics.median(times["fp32"])
            cells = [f"{statistics.median(t) * 1e6:.0f} us ({base / statistics.median(t):.1f}x)" for t in times.values()]
            print(f"| {M} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
