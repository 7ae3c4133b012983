"""Packed low-bit files: exact pack/unpack, exact reload, byte accounting, and damaged files."""

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from minidq import Bart, BartConfig, QuantConfig, Tokenizer
from minidq.cli import main
from minidq.export import (PackedFileError, checksum, dequantize, footprint, freeze, load_packed,
                           load_packed_tokenizer, pack_bits, pack_codes, pack_trits, read_header, save_packed,
                           unpack_codes)
from minidq.fakequant import Quantizer
from minidq.quant import quantize

ROOT = Path(__file__).parent.parent
TEACHER = ROOT / "data_samples" / "summarization" / "teacher"
CODES = [("symmetric", b) for b in range(2, 9)] + [("asymmetric", b) for b in (1, 3, 8)] + \
        [("ternary", 2), ("binary", 1)]
SHAPES = [(1, 1), (1, 7), (3, 7), (5, 3, 3)]  # 1, 7, 21, 45 values: not multiples of 2, 4 or 8 codes per byte


def tiny_model(seed: int = 0, **overrides) -> Bart:
    """A random tiny BART whose LayerNorms and logits bias are not at their (exactly storable) init."""
    base = dict(vocab_size=64, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, max_position_embeddings=32,
                dropout=0.0)
    torch.manual_seed(seed)
    model = Bart(BartConfig(**{**base, **overrides})).eval()
    with torch.no_grad():
        model.final_logits_bias.normal_()
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def batch(vocab: int = 64) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, vocab, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 6:], mask[1, 6:] = 1, 0  # a padded row
    return dict(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.randint(4, vocab, (2, 5), generator=g))


def outputs(model: Bart) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher-forced logits, greedy tokens and beam-search tokens."""
    b = batch(model.config.vocab_size)
    with torch.no_grad():
        logits = model(**b).logits
    greedy = model.generate(b["input_ids"], b["attention_mask"], num_beams=1, max_length=12)
    beam = model.generate(b["input_ids"], b["attention_mask"], num_beams=3, max_length=12)
    return logits, greedy, beam


def assert_identical(got: Bart, want: Bart) -> None:
    for name, a, b in zip(("logits", "greedy tokens", "beam tokens"), outputs(got), outputs(want)):
        assert torch.equal(a, b), f"{name} differ: maxdiff {(a.float() - b.float()).abs().max()}"


QUANTS = {  # name -> QuantConfig: every weight scheme, per-tensor and per-row scales
    "8-8-8": QuantConfig(8, 8, 8),
    "4-4-8 per-row": QuantConfig(4, 4, 8, weight_per_row=True),
    "3-8-8": QuantConfig(3, 8, 8),
    "2-2-8 ternary": QuantConfig(2, 2, 8),
    "2-2-8 symmetric": QuantConfig(2, 2, 8, ternary=False, embedding_per_row=False),
    "1-1-8 binary": QuantConfig(1, 1, 8),
    "2-32-32": QuantConfig(2, 32, 32),
}


# --- codes <-> bytes ---------------------------------------------------------------------------

def test_byte_layouts_by_hand():
    assert pack_bits(torch.tensor([1, 2, 3, 0]), 2).tolist() == [1 | 2 << 2 | 3 << 4 | 0 << 6]
    assert pack_bits(torch.tensor([1, 0, 1, 1, 0, 0, 0, 1, 1]), 1).tolist() == [0b10001101, 0b1]
    assert pack_bits(torch.tensor([5, 7]), 4).tolist() == [5 | 7 << 4]
    assert pack_trits(torch.tensor([2, 0, 1, 0, 0])).tolist() == [2 + 1 * 9]
    assert pack_trits(torch.tensor([2] * 6)).tolist() == [242, 2]  # 3^5 - 1 = 242 fits a byte


@pytest.mark.parametrize("scheme,bits", CODES, ids=[f"{s}{b}" for s, b in CODES])
@pytest.mark.parametrize("packing", ["bits", "trits"])
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_pack_unpack_is_exact(scheme, bits, packing, per_row, shape):
    torch.manual_seed(0)
    x = torch.randn(shape)
    q = Quantizer(scheme, bits, per_row, clip=2.5)
    codes, scale, *offset = q.codes(x)
    data, used = pack_codes(codes, scheme, bits, packing)
    n = math.prod(shape)
    three_levels = (scheme, bits) in (("ternary", 2), ("symmetric", 2))
    assert used == ("trits" if packing == "trits" and three_levels else "bits")
    assert data.dtype == torch.uint8
    assert data.numel() == (math.ceil(n / 5) if used == "trits" else math.ceil(n * bits / 8))
    back = unpack_codes(data, {"shape": list(shape), "scheme": scheme, "bits": bits, "packing": used})
    assert back.dtype == codes.dtype and torch.equal(back, codes)
    assert torch.equal(dequantize(back, scale, *offset), q(x))  # bit for bit what the forward used


# --- frozen and packed models ------------------------------------------------------------------

@pytest.mark.parametrize("quant", QUANTS)
def test_freeze_gives_identical_outputs(quant):
    model = quantize(tiny_model(), QUANTS[quant])
    assert_identical(freeze(copy.deepcopy(model)), model)


@pytest.mark.parametrize("packing", ["bits", "trits"])
@pytest.mark.parametrize("quant", QUANTS)
def test_packed_model_is_identical_in_fp32_mode(quant, packing, tmp_path):
    model = quantize(tiny_model(), QUANTS[quant])
    save_packed(model, tmp_path / "m.packed", packing=packing, float_dtype="fp32")
    loaded = load_packed(tmp_path / "m.packed", backend="fake")
    assert_identical(loaded, model)
    for name, module in model.named_modules():
        if hasattr(module, "quantized_weight"):  # the very weights the fake-quantized forward used
            assert torch.equal(loaded.get_submodule(name).weight, module.quantized_weight())
    assert loaded.quant_config == model.quant_config
    # packing the loaded (frozen) model again stores the same content
    save_packed(loaded, tmp_path / "again.packed", packing=packing, float_dtype="fp32")
    sha = [read_header(tmp_path / f)["__metadata__"]["sha256"] for f in ("m.packed", "again.packed")]
    assert sha[0] == sha[1]


def test_fp16_storage_stays_within_tolerance(tmp_path):
    """The shipped teacher, 16 test examples, teacher-forced. Any change to a float feeding an 8-bit
    activation quantizer can flip a value across a rounding boundary (one activation step), so the
    tolerance is that of a few flipped roundings, far below the quantization error itself.
    Measured: |logit diff| mean 0.03-0.04, max 0.8 (8-8-8) and 0.3 (2-2-8), argmax agreement >= 99.3%,
    with or without int8 positions; 8-8-8 quantization itself moves them by 0.23 on average."""
    teacher, tok = Bart.from_pretrained(TEACHER), Tokenizer.from_pretrained(TEACHER)
    rows = [json.loads(line) for line in (ROOT / "data_samples/summarization/test.jsonl").open()][:16]
    enc, tgt = tok([r["source"] for r in rows]), tok([r["target"] for r in rows])
    labels = tgt["input_ids"].masked_fill(tgt["attention_mask"] == 0, -100)

    def logits(m: Bart) -> torch.Tensor:
        with torch.no_grad():
            return m(enc["input_ids"], enc["attention_mask"], labels=labels).logits[labels != -100]

    reference = logits(teacher)
    for quant in ("8-8-8", "2-2-8"):
        model = freeze(quantize(copy.deepcopy(teacher), quant))
        want = logits(model)
        for int8_positions in (False, True):
            save_packed(model, tmp_path / "t.packed", float_dtype="fp16", int8_positions=int8_positions)
            got = logits(load_packed(tmp_path / "t.packed", backend="fake"))
            diff = (got - want).abs()
            print(f"{quant} fp16 int8_positions={int8_positions}: max {diff.max():.3f} mean {diff.mean():.4f}; "
                  f"agree {(got.argmax(-1) == want.argmax(-1)).float().mean():.4f}; quantization itself: "
                  f"max {(want - reference).abs().max():.2f} mean {(want - reference).abs().mean():.3f}")
            assert diff.max() < 1.5 and diff.mean() < 0.06
            assert (got.argmax(-1) == want.argmax(-1)).float().mean() > 0.97  # 2-2-8 without training has many near-ties: measured 98.2% on the shipped teacher
            assert diff.mean() < 0.25 * (want - reference).abs().mean()


def test_tokenizer_travels_inside(tmp_path):
    tok = Tokenizer.from_pretrained(TEACHER)
    save_packed(quantize(tiny_model(vocab_size=tok.vocab_size), "2-2-8"), tmp_path / "m.packed", tok)
    back = load_packed_tokenizer(tmp_path / "m.packed")
    text = "Shares in Voublabrel Airlines rose 16 percent."
    assert back.encode(text) == tok.encode(text) and back.vocab_size == tok.vocab_size
    save_packed(quantize(tiny_model(), "2-2-8"), tmp_path / "bare.packed")
    with pytest.raises(PackedFileError, match="no tokenizer"):
        load_packed_tokenizer(tmp_path / "bare.packed")


# --- footprint ---------------------------------------------------------------------------------

def test_footprint_accounts_for_every_byte(tmp_path):
    model = quantize(tiny_model(vocab_size=1000, d_model=64), "2-2-8")
    save_packed(model, tmp_path / "m.packed", packing="trits", int8_positions=True)
    fp = footprint(tmp_path / "m.packed")
    header = read_header(tmp_path / "m.packed")
    n_tensors = len(header) - 1
    stored = sum(t["data_offsets"][1] - t["data_offsets"][0] for k, t in header.items() if k != "__metadata__")
    accounted = sum(b for row, (_, b) in fp.rows.items() if row not in ("metadata", "container"))
    assert accounted == stored  # every tensor's bytes are what its spec predicts (values x bits)
    assert sum(b for _, b in fp.rows.values()) == fp.file_bytes == (tmp_path / "m.packed").stat().st_size
    assert 0 < fp.rows["container"][1] < 160 * n_tensors + 64  # 8-byte length + the index: ~100 bytes a tensor
    assert fp.params == model.num_parameters() + 1000  # + final_logits_bias, a buffer
    assert fp.rows["token embedding"] == (64_000, math.ceil(64_000 / 5))  # trits: 1.6 bits
    assert fp.rows["positions"][1] == 2 * 34 * 64  # int8
    assert fp.rows["scales"][0] == 1000 + 2 * 34 + 2 * 6 + 2 * 10  # one per embedding/position row, one per linear


def test_packed_is_smaller_by_the_predicted_ratio(tmp_path):
    model = tiny_model(vocab_size=2000, d_model=64, encoder_ffn_dim=256, decoder_ffn_dim=256)
    model.save_pretrained(tmp_path / "fp32")
    fp32_file = (tmp_path / "fp32" / "model.safetensors").stat().st_size
    assert footprint(tmp_path / "fp32").params == model.num_parameters() + 2000  # + final_logits_bias
    quantize(model, "2-2-8")
    sizes = {}
    for packing in ("bits", "trits"):
        save_packed(model, tmp_path / f"{packing}.packed", packing=packing)
        fp = footprint(tmp_path / f"{packing}.packed")
        sizes[packing] = fp.file_bytes
        predicted = fp.fp32_bytes / fp.model_bytes
        assert predicted > 6
        assert fp32_file / fp.file_bytes == pytest.approx(predicted, rel=0.01)
    assert sizes["trits"] < sizes["bits"]


def test_footprint_of_an_hf_folder():
    fp = footprint(TEACHER)
    assert fp.file_bytes == (TEACHER / "model.safetensors").stat().st_size
    assert fp.params == Bart.from_pretrained(TEACHER).num_parameters() + 4000  # + final_logits_bias
    assert fp.rows["token embedding"] == (4000 * 128, 4 * 4000 * 128)
    assert fp.rows["container"][1] < 0.01 * fp.file_bytes


# --- damaged files -----------------------------------------------------------------------------

@pytest.fixture
def packed(tmp_path) -> Path:
    save_packed(quantize(tiny_model(), "2-2-8"), tmp_path / "m.packed")
    return tmp_path / "m.packed"


def rewrite(path: Path, drop: str | None = None, **metadata_changes) -> None:
    """Rewrite a packed file with a tensor dropped or metadata changed, checksum made valid again."""
    metadata = {**read_header(path)["__metadata__"], **metadata_changes}
    tensors = {k: v for k, v in load_file(path).items() if k != drop}
    metadata["sha256"] = checksum(tensors, metadata)
    save_file(tensors, path, metadata=metadata)


def test_truncated_files_are_clear_errors(packed):
    data = packed.read_bytes()
    for cut in (len(data) - 10, 100, 4, 0):
        packed.write_bytes(data[:cut])
        with pytest.raises(PackedFileError, match="truncated"):
            load_packed(packed)


def test_tampered_bytes_fail_the_checksum(packed):
    data = bytearray(packed.read_bytes())
    data[-5] ^= 0x10  # one bit of some tensor
    packed.write_bytes(bytes(data))
    with pytest.raises(PackedFileError, match="checksum mismatch"):
        load_packed(packed)


def test_tampered_metadata_fails_the_checksum(packed):
    metadata = read_header(packed)["__metadata__"]
    save_file(load_file(packed), packed, metadata={**metadata, "quant_config": metadata["quant_config"].replace(
        '"activation_bits": 8', '"activation_bits": 4')})
    with pytest.raises(PackedFileError, match="checksum mismatch"):
        load_packed(packed)


def test_wrong_version_missing_tensor_and_foreign_files(packed, tmp_path):
    rewrite(packed, version="2")
    with pytest.raises(PackedFileError, match="version '2' is unknown"):
        load_packed(packed)
    rewrite(packed, version="1", drop="encoder.layers.0.fc1.bias")
    with pytest.raises(PackedFileError, match="missing tensor encoder.layers.0.fc1.bias"):
        load_packed(packed)
    rewrite(packed, drop="encoder.layers.1.fc2.weight.codes")
    with pytest.raises(PackedFileError, match="missing tensor encoder.layers.1.fc2.weight.codes"):
        load_packed(packed)
    with pytest.raises(PackedFileError, match="not a minidq packed file"):
        load_packed(TEACHER / "model.safetensors")
    (tmp_path / "junk.packed").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(PackedFileError, match="corrupt header"):
        load_packed(tmp_path / "junk.packed")


# --- the command line --------------------------------------------------------------------------

def test_cli_export_info_generate(tmp_path, capsys):
    tok = Tokenizer.from_pretrained(TEACHER)
    model = tiny_model(vocab_size=tok.vocab_size)
    model.save_pretrained(tmp_path / "ckpt")
    tok.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "student.packed"
    assert main(["export", "--model", str(tmp_path / "ckpt"), "--quant", "2-2-8", "--out", str(out),
                 "--packing", "trits", "--float-dtype", "fp32"]) == 0
    table = capsys.readouterr().out
    assert "token embedding" in table and "1.60" in table and f"{out.stat().st_size:,}" in table
    assert main(["info", str(out), "--teacher", str(tmp_path / "ckpt")]) == 0
    assert "x smaller" in capsys.readouterr().out

    texts = ["Shares in Voublabrel Airlines rose 16 percent.", "The mayor welcomed the news."]
    assert main(["generate", "--model", str(out), "--num-beams", "2", "--max-length", "10", *texts]) == 0
    from minidq.evaluate import predict

    want = predict(quantize(model, "2-2-8"), tok, texts, progress=False, num_beams=2, max_length=10)
    assert capsys.readouterr().out.splitlines() == want

    out.write_bytes(out.read_bytes()[:-1])
    assert main(["generate", "--model", str(out), "x"]) == 2  # a bad input: exit 2
    assert "truncated" in capsys.readouterr().err
