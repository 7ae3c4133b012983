"""Solutions to the exercises of lesson 10 (packing bits)."""

import torch


def pack_2bit(u: torch.Tensor) -> torch.Tensor:
    """Unsigned 2-bit codes (uint8 values 0..3) four to a byte, code i of each group of four in bits
    2i and 2i+1 (the first code in the lowest bits); the last byte is padded with zero codes."""
    u = u.flatten().to(torch.uint8)
    pad = (-len(u)) % 4
    u = torch.cat([u, torch.zeros(pad, dtype=torch.uint8)]).reshape(-1, 4)   # (bytes, 4)
    return u[:, 0] | (u[:, 1] << 2) | (u[:, 2] << 4) | (u[:, 3] << 6)


def unpack_trits_by_hand(data: torch.Tensor, n: int) -> torch.Tensor:
    """Bytes holding five base-3 digits each (t0 + 3 t1 + 9 t2 + 27 t3 + 81 t4) back to n digits
    (uint8 values 0..2), the lowest digit first: digit = byte mod 3, byte = byte div 3, five times."""
    rest = data.to(torch.int64)
    digits = []
    for _ in range(5):
        digits.append(rest % 3)
        rest = rest // 3
    return torch.stack(digits, dim=1).flatten()[:n].to(torch.uint8)          # (bytes * 5,) -> (n,)


def code_bytes(n: int, scheme: str, bits: int = 2) -> int:
    """Bytes that n codes take in a packed file: 'trits' packs five per byte, 'bits' packs a
    stream of `bits`-bit fields cut into bytes (the last one padded)."""
    if scheme == "trits":
        return -(-n // 5)
    return -(-n * bits // 8)
