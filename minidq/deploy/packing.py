"""Codes <-> bytes: a b-bit code takes b bits, a 3-level code 1.6 bits.

Codes are first made unsigned (symmetric codes -q..q become 0..2q) and then written as one bit
stream, lowest bit first, so 8-bit codes are one byte each, 4-bit codes two per byte, 2-bit codes
four per byte, binary codes eight per byte. Codes with 3 levels (TWN's -1/0/+1, or a symmetric
2-bit grid, which has the same levels) can instead be packed as *trits*: five base-3 digits per
byte, since 3^5 = 243 <= 256, i.e. 1.6 bits per weight instead of 2 (log2 3 = 1.585 bits is the floor).
"""

from __future__ import annotations

import math

import torch


def code_range(scheme: str, bits: int) -> tuple[int, int]:
    """(lowest code, step between codes): code = unsigned * step + lowest."""
    if scheme == "binary":
        return -1, 2                           # {-1, +1} -> {0, 1}
    if scheme == "ternary":
        return -1, 1                           # {-1, 0, 1} -> {0, 1, 2}
    if scheme == "symmetric":
        return -(2 ** (bits - 1) - 1), 1       # -q..q -> 0..2q
    return 0, 1                                # asymmetric codes are unsigned already


def levels(scheme: str, bits: int) -> int:
    return {"binary": 2, "ternary": 3, "symmetric": 2 ** bits - 1}.get(scheme, 2 ** bits)


def pack_bits(u: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned codes < 2^bits -> bytes: one bit stream, each code lowest bit first.

    For 1, 2, 4 bits this is 8/bits codes per byte with code i at bit bits*(i % (8/bits)),
    e.g. four 2-bit codes a, b, c, d -> a | b << 2 | c << 4 | d << 6. Other widths straddle bytes."""
    if bits == 8:
        return u.flatten().to(torch.uint8)  # the stream of 8-bit codes is the codes themselves
    stream = ((u.reshape(-1, 1).to(torch.uint8) >> torch.arange(bits, dtype=torch.uint8)) & 1).flatten()
    stream = torch.cat([stream, stream.new_zeros(-stream.numel() % 8)])  # pad to whole bytes
    return (stream.view(-1, 8) << torch.arange(8, dtype=torch.uint8)).sum(1, dtype=torch.uint8)


def unpack_bits(data: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """The first n codes of pack_bits' stream."""
    if bits == 8:
        return data[:n]
    if 8 % bits == 0:  # whole codes per byte: shift each byte once per code, no bit stream in memory
        shifts = torch.arange(0, 8, bits, dtype=torch.uint8)
        return ((data.reshape(-1, 1) >> shifts) & (2 ** bits - 1)).flatten()[:n]  # (bytes, 8 / bits) -> (n,)
    stream = ((data.reshape(-1, 1) >> torch.arange(8, dtype=torch.uint8)) & 1).flatten()[: n * bits]
    return (stream.view(n, bits) << torch.arange(bits, dtype=torch.uint8)).sum(1, dtype=torch.uint8)


def pack_trits(u: torch.Tensor) -> torch.Tensor:
    """Unsigned codes in {0, 1, 2} -> bytes, five per byte as a base-3 number t0 + 3 t1 + ... + 81 t4."""
    u = u.flatten().to(torch.uint8)
    u = torch.cat([u, u.new_zeros(-u.numel() % 5)]).view(-1, 5)  # (bytes, 5)
    return (u * torch.tensor([1, 3, 9, 27, 81], dtype=torch.uint8)).sum(1, dtype=torch.uint8)  # <= 242


# Byte value -> its five base-3 digits, lowest first (values 243..255 never occur in a file).
TRIT_TABLE = torch.tensor([[v // 3 ** i % 3 for i in range(5)] for v in range(256)], dtype=torch.uint8)


def unpack_trits(data: torch.Tensor, n: int) -> torch.Tensor:
    return TRIT_TABLE[data.int()].flatten()[:n]  # (bytes, 5) -> (n,)


def pack_codes(codes: torch.Tensor, scheme: str, bits: int, packing: str) -> tuple[torch.Tensor, str]:
    """(bytes, packing used): trits only where the codes have 3 levels, bits otherwise."""
    lo, step = code_range(scheme, bits)
    u = ((codes.to(torch.int16) - lo) // step).to(torch.uint8)
    if packing == "trits" and levels(scheme, bits) == 3:
        return pack_trits(u), "trits"
    return pack_bits(u, bits), "bits"


def unpack_codes(data: torch.Tensor, spec: dict) -> torch.Tensor:
    n = math.prod(spec["shape"])
    u = unpack_trits(data, n) if spec["packing"] == "trits" else unpack_bits(data, spec["bits"], n)
    lo, step = code_range(spec["scheme"], spec["bits"])
    dtype = torch.uint8 if spec["scheme"] == "asymmetric" else torch.int8  # as the quantizers return them
    return (u.to(torch.int16) * step + lo).to(dtype).view(spec["shape"])
