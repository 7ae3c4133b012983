"""Checks of lesson 11's exercises: each builds its own inputs and asserts."""

from functools import lru_cache

import torch

from minidq import Bart, BartConfig
from minidq.export import pack_bits, pack_trits, unpack_trits


def check_pack_2bit(pack_2bit) -> None:
    assert pack_2bit(torch.tensor([1, 2, 3, 0], dtype=torch.uint8)).tolist() == [1 | 2 << 2 | 3 << 4], \
        "the first code goes to the lowest bits: [1, 2, 3, 0] -> 0b00111001 = 57"
    assert pack_2bit(torch.tensor([3], dtype=torch.uint8)).tolist() == [3], "the last byte is padded with zero codes"
    torch.manual_seed(0)
    for n in (1, 4, 21, 1000):
        u = torch.randint(0, 4, (n,), dtype=torch.uint8)
        assert torch.equal(pack_2bit(u), pack_bits(u, 2)), f"{n} codes: differs from pack_bits(u, 2)"


def check_unpack_trits_by_hand(unpack_trits_by_hand) -> None:
    assert unpack_trits_by_hand(torch.tensor([114], dtype=torch.uint8), 5).tolist() == [0, 2, 0, 1, 1], \
        "114 = 2*3 + 1*27 + 1*81: digits lowest first"
    assert unpack_trits_by_hand(torch.tensor([242], dtype=torch.uint8), 5).tolist() == [2, 2, 2, 2, 2]
    torch.manual_seed(0)
    for n in (1, 5, 21, 1000):
        t = torch.randint(0, 3, (n,), dtype=torch.uint8)
        got = unpack_trits_by_hand(pack_trits(t), n)
        assert got.shape == t.shape and torch.equal(got, t), f"{n} trits: not the digits that were packed"
        assert torch.equal(got, unpack_trits(pack_trits(t), n))


@lru_cache(maxsize=None)
def _counted_mib(encoder_layers: int, decoder_layers: int, weight_bits: int, embedding_bits: int) -> float:
    """The same accounting, counted on a real (meta-device) model of BART-base's shape."""
    with torch.device("meta"):
        model = Bart(BartConfig(encoder_layers=encoder_layers, decoder_layers=decoder_layers))
    linear = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    bits = 0
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        bits += p.numel() * (weight_bits if name in linear else embedding_bits if name == "shared.weight" else 32)
    return bits / 8 / 2 ** 20


def check_paper_footprint_mib(paper_footprint_mib) -> None:
    base = BartConfig()  # BART-base: 6-6, d_model 768, vocab 50265, FFN 3072, 1024 (+2) positions
    for bits, paper in ((32, 532.0), (8, 138.1), (2, 39.6)):
        got = paper_footprint_mib(base, bits, bits)
        assert round(got, 1) == paper, f"{bits}-{bits}-8 BART-base: {got:.2f} MiB, the paper's {paper} MiB"
    for enc, dec, w, e in ((6, 6, 2, 8), (6, 3, 2, 2), (6, 1, 2, 2), (3, 1, 8, 2)):
        config = BartConfig(encoder_layers=enc, decoder_layers=dec)
        got, want = paper_footprint_mib(config, w, e), _counted_mib(enc, dec, w, e)
        assert abs(got - want) < 1e-6, f"{enc}-{dec} at W{w} E{e}: {got:.4f} MiB, counted on the model {want:.4f}"
