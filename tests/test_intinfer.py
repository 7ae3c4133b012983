"""Integer inference: int8 x int8 -> int32 equals fake quantization; answers alone = in a batch (act_scale="token")."""

import copy
import json
from pathlib import Path

import pytest
import torch

from minidq import Bart, QuantConfig, Tokenizer
from minidq.export import freeze, load_packed, save_packed, to_integer
from minidq.deploy.intinfer import (FBGEMM_MAX_CODE, FusedInt8Linear, Int8Weight, IntEmbedding, IntLinear, fbgemm_available,
                             int_matmul)
from minidq.fakequant import Quantizer, dequantize, symmetric_codes
from minidq.quant import QuantLinear, quantize
from test_export import QUANTS, outputs, tiny_model

ROOT = Path(__file__).parent.parent
TEACHER = ROOT / "data_samples" / "summarization" / "teacher"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def teacher_and_inputs():
    teacher, tok = Bart.from_pretrained(TEACHER), Tokenizer.from_pretrained(TEACHER)
    rows = [json.loads(line) for line in (ROOT / "data_samples/summarization/test.jsonl").open()][:4]
    return teacher, tok([r["source"] for r in rows])


@pytest.mark.parametrize("M,K,N", [(1, 7, 5), (3, 64, 48), (17, 40, 24), (0, 8, 8)])
@pytest.mark.parametrize("fallback", [False, True])
def test_int_matmul_is_exact(M, K, N, fallback, monkeypatch):
    if fallback:
        monkeypatch.delattr(torch, "_int_mm")
    torch.manual_seed(0)
    a = torch.randint(-127, 128, (M, K), dtype=torch.int8)
    b = torch.randint(-127, 128, (N, K), dtype=torch.int8)
    got = int_matmul(a, b)
    assert got.dtype == torch.int32 and torch.equal(got.long(), a.long() @ b.long().T)


@pytest.mark.parametrize("wmax", [1, FBGEMM_MAX_CODE, 127])
def test_int8_weight_is_exact_on_either_kernel(wmax):
    """Activation codes at their extremes against weight codes at theirs: fbgemm's int16 pair
    sums would saturate beyond FBGEMM_MAX_CODE, so such weights go to _int_mm."""
    torch.manual_seed(0)
    x = torch.randint(-127, 128, (5, 96)).float()
    x[0] = 127  # the largest uint8 input fbgemm sees (+128 = 255)
    w = torch.randint(-wmax, wmax + 1, (24, 96), dtype=torch.int8)
    w[0] = wmax
    weight = Int8Weight(w)
    assert weight.kernel == ("fbgemm" if fbgemm_available(w) else "_int_mm")
    assert wmax <= FBGEMM_MAX_CODE or weight.kernel == "_int_mm"
    assert torch.equal(weight(x), (x.double() @ w.double().T).float())
    assert torch.equal(weight.int8_codes(), w)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("clip", [2.5, None])
def test_fused_linear_equals_the_fake_one(bits, clip):
    """One fbgemm call (input codes, int32 sums, scales) against the fake-quantized linear,
    on inputs past the clip on both sides (codes saturate at +-qmax, not at fbgemm's -128), an
    all-zero input (scale 1) and a single token."""
    if not fbgemm_available(torch.zeros(1, dtype=torch.int8)):
        pytest.skip("no fbgemm on this machine")
    torch.manual_seed(0)
    codes = torch.randint(-1, 2, (48, 96), dtype=torch.int8)
    w_scale, bias = torch.rand(48, 1) + 0.5, torch.randn(48)
    quant = Quantizer("symmetric", bits, clip=clip)
    fused = FusedInt8Linear(codes, w_scale, quant)
    assert torch.equal(fused.int8_codes(), codes)
    for x in (4 * torch.randn(2, 5, 96), torch.zeros(3, 96), torch.randn(1, 96)):
        fake = torch.nn.functional.linear(dequantize(*symmetric_codes(x, bits, clip=clip)), dequantize(codes, w_scale), bias)
        # float rounding apart (other orders of the same products): one code off would move an output by ~1e-2
        torch.testing.assert_close(fused(x) + bias, fake, rtol=1e-6, atol=1e-5)


# Integer and fake paths compute the same code sums: the fake one in floats that hold small
# integers (exact while partial sums stay below 2^24), the integer one in int32 (always exact);
# both then multiply by the same scales in the same order. So they agree bit for bit here; the
# tolerance allows for the last bits where a float sum of 8-bit x 8-bit codes would pass 2^24.
@pytest.mark.parametrize("act_scale", ["tensor", "token"])
@pytest.mark.parametrize("quant", QUANTS)
def test_integer_and_fake_backends_agree(quant, act_scale, tmp_path):
    cfg = QuantConfig(**{**QUANTS[quant].__dict__, "act_scale": act_scale})
    model = quantize(tiny_model(), cfg)
    save_packed(model, tmp_path / "m.packed", float_dtype="fp32")
    integer, fake = load_packed(tmp_path / "m.packed"), load_packed(tmp_path / "m.packed", backend="fake")
    assert integer.quant_config == fake.quant_config == cfg
    (li, *tokens_i), (lf, *tokens_f) = outputs(integer), outputs(fake)
    torch.testing.assert_close(li, lf, rtol=0, atol=1e-3)
    assert all(torch.equal(a, b) for a, b in zip(tokens_i, tokens_f))
    torch.testing.assert_close(li, outputs(model)[0], rtol=0, atol=1e-3)
    linears = [m for m in integer.modules() if isinstance(m, (IntLinear, QuantLinear))]
    if cfg.activation_bits == 32:  # nothing to multiply as integers: the fake (frozen) modules stay
        assert not any(isinstance(m, IntLinear) for m in linears)
    else:
        assert all(isinstance(m, IntLinear) for m in linears) and isinstance(integer.shared, IntEmbedding)
        assert integer.encoder.embed_tokens is integer.shared is integer.decoder.embed_tokens
        assert all(m.codes.dtype == torch.int8 for m in integer.modules() if isinstance(m, (IntLinear, IntEmbedding)))
        # an in-memory model converts the same way
        converted = to_integer(freeze(copy.deepcopy(model)))
        torch.testing.assert_close(outputs(converted)[0], li, rtol=0, atol=0)


def test_integer_model_holds_a_quarter_of_the_fp32_bytes(tmp_path):
    model = quantize(tiny_model(vocab_size=1000, d_model=64, encoder_ffn_dim=256, decoder_ffn_dim=256), "2-2-8")
    save_packed(model, tmp_path / "m.packed")
    nbytes = lambda m: sum(t.numel() * t.element_size() for t in [*m.parameters(), *m.buffers()])  # noqa: E731
    integer, fake = load_packed(tmp_path / "m.packed"), load_packed(tmp_path / "m.packed", backend="fake")
    ratio = nbytes(integer) / nbytes(fake)
    assert ratio < 1 / 3, ratio  # measured 0.30: int8 codes, fp32 positions, norms and biases


@pytest.mark.parametrize("quant,act_scale", [("8-8-8", "token"), ("2-2-8", "token"), ("2-2-8", "tensor")])
def test_integer_and_fake_agree_on_the_shipped_teacher(quant, act_scale, teacher_and_inputs, tmp_path):
    teacher, batch = teacher_and_inputs
    save_packed(quantize(copy.deepcopy(teacher), QuantConfig.parse(quant, act_scale=act_scale)), tmp_path / "t.packed")
    integer, fake = load_packed(tmp_path / "t.packed"), load_packed(tmp_path / "t.packed", backend="fake")
    # DQ-BART's per-tensor input scales with ternary weights: every linear is one fbgemm call
    fused = [m.fused for m in integer.modules() if isinstance(m, (IntLinear, IntEmbedding))]
    assert all(fused) == (act_scale == "tensor" and quant == "2-2-8" and fbgemm_available(torch.zeros(1, dtype=torch.int8)))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        logits = [m(ids, mask, decoder_input_ids=ids[:, :24]).logits for m in (integer, fake)]
    torch.testing.assert_close(*logits, rtol=0, atol=1e-3)
    assert torch.equal(integer.generate(ids, mask, num_beams=4, max_length=24),
                       fake.generate(ids, mask, num_beams=4, max_length=24))


@pytest.mark.parametrize("backend", ["fake", "integer"])
def test_token_scales_answer_the_same_alone_batched_and_cached(backend, teacher_and_inputs, tmp_path):
    """act_scale="token": every scale belongs to one row, and padded keys get probability 0, so
    an input's tokens do not depend on its batch-mates, its padding, or the KV cache."""
    teacher, batch = teacher_and_inputs
    save_packed(quantize(copy.deepcopy(teacher), QuantConfig.parse("2-2-8", act_scale="token")), tmp_path / "t.packed")
    model = load_packed(tmp_path / "t.packed", backend=backend)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert (mask == 0).any()  # some inputs are padded
    for beams in (1, 4):
        batched = model.generate(ids, mask, num_beams=beams, max_length=24)
        uncached = model.generate(ids, mask, num_beams=beams, max_length=24, use_cache=False)
        assert torch.equal(batched, uncached), f"beams={beams}: cache changes the answer"
        for i in range(len(ids)):
            n = int(mask[i].sum())
            alone = model.generate(ids[i:i + 1, :n], num_beams=beams, max_length=24)[0]
            assert torch.equal(alone, batched[i, :len(alone)]), f"beams={beams}, input {i}: alone != batched"
            assert (batched[i, len(alone):] == model.config.pad_token_id).all()


def test_tensor_scales_depend_on_the_batch(teacher_and_inputs):
    """DQ-BART's per-tensor scales: the counterpart of the test above, which it would fail."""
    teacher, batch = teacher_and_inputs
    model = quantize(copy.deepcopy(teacher), QuantConfig.parse("2-2-8", act_scale="tensor")).eval()
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        batched = model(ids, mask, decoder_input_ids=ids[:, :8]).logits[0]
        alone = model(ids[:1], mask[:1], decoder_input_ids=ids[:1, :8]).logits[0]
    assert not torch.allclose(batched, alone, atol=1e-3)
