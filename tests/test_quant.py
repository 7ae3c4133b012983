"""Quantizers, the straight-through estimator, and quantize() on a whole BART."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minidq import Bart, BartConfig
from minidq.config import ConfigError
from minidq.fakequant import NoQuant, Quantizer, dequantize, fake_symmetric, symmetric_codes
from minidq.quant import QuantConfig, QuantEmbedding, QuantLinear, quantize

QUANTIZERS = {  # name -> (scheme, bits): every scheme, and a few bit widths of the uniform ones
    "sym2": ("symmetric", 2), "sym4": ("symmetric", 4), "sym8": ("symmetric", 8),
    "asym1": ("asymmetric", 1), "asym4": ("asymmetric", 4), "asym8": ("asymmetric", 8),
    "ternary": ("ternary", 2), "binary": ("binary", 1),
}
UNIFORM = [k for k in QUANTIZERS if k.startswith(("sym", "asym"))]


def expected_levels(scheme: str, bits: int) -> int:
    return {"symmetric": 2 ** bits - 1, "asymmetric": 2 ** bits, "ternary": 3, "binary": 2}[scheme]


def cmp(name: str, got: torch.Tensor, want: torch.Tensor) -> None:
    """nn-zero-to-hero's check: exact equality, else say how far off (and fail)."""
    exact = torch.equal(got, want)
    maxdiff = (got - want).abs().max().item()
    assert exact, f"{name}: exact={exact} approximate={torch.allclose(got, want)} maxdiff={maxdiff}"


def tiny_config(**overrides) -> BartConfig:
    base = dict(vocab_size=64, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, max_position_embeddings=32,
                dropout=0.0)
    return BartConfig(**{**base, **overrides})


# --- the quantizers ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", QUANTIZERS)
@pytest.mark.parametrize("per_row", [False, True])
def test_number_of_levels(name, per_row):
    scheme, bits = QUANTIZERS[name]
    torch.manual_seed(0)
    x = torch.rand(3, 20000) * 2 - 1  # uniform: every level of the grid gets used
    q, codes = Quantizer(scheme, bits, per_row)(x), Quantizer(scheme, bits, per_row).codes(x)[0]
    rows = [(q[i], codes[i]) for i in range(3)] if per_row else [(q, codes)]
    for values, row_codes in rows:
        assert values.unique().numel() == expected_levels(scheme, bits)
        assert row_codes.unique().numel() == expected_levels(scheme, bits)


@pytest.mark.parametrize("name", UNIFORM)
@pytest.mark.parametrize("clip", [None, 2.5])
def test_error_is_at_most_half_a_step_inside_the_range(name, clip):
    scheme, bits = QUANTIZERS[name]
    torch.manual_seed(1)
    x = torch.randn(8, 300) * 1.5  # with clip=2.5, about 10% of it lies outside
    quantizer = Quantizer(scheme, bits, per_row=True, clip=clip)
    step = quantizer.codes(x)[1]
    inside = torch.ones_like(x, dtype=torch.bool) if clip is None else x.abs() <= clip
    error = (x - quantizer(x)).abs()
    assert (error <= step / 2 * (1 + 1e-5))[inside].all()
    if clip is not None:
        assert (error[~inside] > step.expand_as(x)[~inside] / 2).any()  # outside: clamped, not rounded


@pytest.mark.parametrize("name", QUANTIZERS)
@pytest.mark.parametrize("per_row", [False, True])
def test_idempotent(name, per_row):
    """q(q(x)) == q(x): the same integer codes exactly; values to float rounding of the recomputed
    scale (e.g. TWN's mean of n equal numbers can differ from that number by one ulp)."""
    scheme, bits = QUANTIZERS[name]
    torch.manual_seed(2)
    quantizer = Quantizer(scheme, bits, per_row, clip=2.5)
    x = torch.randn(16, 50)
    once = quantizer(x)
    cmp("codes of q(x) vs codes of x", quantizer.codes(once)[0], quantizer.codes(x)[0])
    torch.testing.assert_close(quantizer(once), once, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", QUANTIZERS)
def test_per_row_scales_are_one_per_row_and_independent(name):
    scheme, bits = QUANTIZERS[name]
    torch.manual_seed(3)
    x = torch.randn(5, 40) * torch.tensor([0.01, 0.1, 1.0, 3.0, 10.0])[:, None]  # very different rows
    quantizer = Quantizer(scheme, bits, per_row=True)
    scale = quantizer.codes(x)[1]
    assert scale.shape == (5, 1) and scale.unique().numel() == 5
    per_tensor = Quantizer(scheme, bits, per_row=False)
    cmp("per-row = each row alone", quantizer(x), torch.cat([per_tensor(row[None]) for row in x]))


def test_per_row_activation_scales_belong_to_each_token_alone():
    """act_scale="token": a row is the last dim (a token; a token in one head; a query's
    probabilities), so quantizing a token alone or among others gives the same values."""
    torch.manual_seed(8)
    quantizer = QuantConfig(act_scale="token").activation_quantizer()
    assert quantizer.per_row
    for shape in [(3, 5, 16), (2, 4, 5, 8)]:  # (B, T, C) linear input; (B, heads, T, head_dim) q/k/v
        x = torch.randn(shape) * torch.rand(shape[:-1] + (1,)) * 4
        whole = quantizer(x)
        cmp(f"{shape}: first row alone", quantizer(x[(0,) * (len(shape) - 1)][None]), whole[(0,) * (len(shape) - 1)][None])
        cmp(f"{shape}: batch element 1 alone", quantizer(x[1:2]), whole[1:2])
    tensor = QuantConfig().activation_quantizer()
    x = torch.randn(3, 5, 16) * torch.tensor([0.1, 0.1, 1.0])[:, None, None]
    assert not tensor.per_row and not torch.equal(tensor(x[:1]), tensor(x)[:1])  # DQ-BART's: batch-dependent


@pytest.mark.parametrize("name", QUANTIZERS)
@pytest.mark.parametrize("per_row", [False, True])
def test_zero_and_constant_tensors(name, per_row):
    scheme, bits = QUANTIZERS[name]
    quantizer = Quantizer(scheme, bits, per_row)
    cmp("all zeros", quantizer(torch.zeros(4, 6)), torch.zeros(4, 6))
    constant = torch.full((4, 6), 0.37)
    torch.testing.assert_close(quantizer(constant), constant, rtol=1e-6, atol=0)
    mixed = torch.cat([torch.zeros(1, 6), torch.randn(3, 6)])  # one all-zero row among others
    assert torch.isfinite(quantizer(mixed)).all()


@pytest.mark.parametrize("name", QUANTIZERS)
def test_forward_is_exactly_the_codes_export_will_store(name):
    scheme, bits = QUANTIZERS[name]
    quantizer = Quantizer(scheme, bits, per_row=True, clip=2.5)
    x = torch.randn(6, 30) * 2
    codes, scale, *offset = quantizer.codes(x)
    assert codes.dtype in (torch.int8, torch.uint8)
    cmp("forward vs codes * scale (+ offset)", quantizer(x), codes.float() * scale + (offset[0] if offset else 0))


def test_symmetric_needs_two_bits():
    with pytest.raises(ValueError, match="at least 2 bits"):
        symmetric_codes(torch.randn(4), 1)


# --- the straight-through estimator -------------------------------------------------------------

@pytest.mark.parametrize("name", QUANTIZERS)
@pytest.mark.parametrize("clip", [None, 2.5])
def test_ste_gradient_elementwise(name, clip):
    """Hand-derived: dL/dx = dL/dq where -clip <= x <= clip, and 0 outside."""
    scheme, bits = QUANTIZERS[name]
    torch.manual_seed(4)
    x = (torch.randn(7, 33) * 2).requires_grad_()
    x.data[0, :3] = torch.tensor([2.5, -2.5, 2.6])  # on the boundary (inside) and just outside
    upstream = torch.randn(7, 33)
    (Quantizer(scheme, bits, per_row=True, clip=clip)(x) * upstream).sum().backward()
    inside = torch.ones_like(x, dtype=torch.bool) if clip is None else x.detach().abs() <= clip
    cmp("dL/dx", x.grad, torch.where(inside, upstream, torch.zeros_like(upstream)))
    if clip is not None:
        assert inside[0, :2].all() and not inside[0, 2] and not inside.all()


@pytest.mark.parametrize("per_row", [False, True])
def test_integer_form_of_quantlinear_gives_the_fake_quantized_forward_and_gradients(per_row):
    """QuantLinear sums the codes exactly (integer-valued floats) and then scales: the same
    numbers as F.linear on the dequantized tensors, up to that F.linear's float rounding."""
    torch.manual_seed(9)
    layer = QuantLinear(40, 24, weight_quant=Quantizer("symmetric", 8, per_row=True, clip=2.5),
                        input_quant=Quantizer("symmetric", 8, per_row=per_row, clip=2.5))
    x = (torch.randn(3, 5, 40) * 1.5).requires_grad_()
    y = layer(x)
    x_ref, w_ref = x.detach().clone().requires_grad_(), layer.weight.detach().clone().requires_grad_()
    y_ref = F.linear(layer.input_quant(x_ref), layer.weight_quant(w_ref), layer.bias.detach())
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
    upstream = torch.randn_like(y)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(layer.weight.grad, w_ref.grad, rtol=1e-6, atol=1e-6)
    assert (x.grad == 0).any()  # the clip range did cut somewhere


def test_ste_reaches_the_latent_weights_through_quantlinear():
    torch.manual_seed(5)
    layer = QuantLinear(12, 7, weight_quant=Quantizer("ternary", 2, clip=0.5),
                        input_quant=Quantizer("symmetric", 8, clip=2.5))
    with torch.no_grad():
        layer.weight.mul_(2)                 # push some weights past clip=0.5
        layer.bias.normal_()
    x = (torch.randn(3, 5, 12) * 1.5).requires_grad_()
    upstream = torch.randn(3, 5, 7)
    (layer(x) * upstream).sum().backward()

    x_q, w_q = layer.input_quant(x.detach()), layer.quantized_weight().detach()
    g = upstream.reshape(-1, 7)
    w_inside, x_inside = layer.weight.detach().abs() <= 0.5, x.detach().abs() <= 2.5
    assert not w_inside.all() and w_inside.any()
    torch.testing.assert_close(layer.weight.grad, (g.T @ x_q.reshape(-1, 12)) * w_inside, rtol=1e-6, atol=1e-6)
    cmp("dL/dW outside the clip range", layer.weight.grad[~w_inside], torch.zeros(int((~w_inside).sum())))
    torch.testing.assert_close(x.grad, (upstream @ w_q) * x_inside, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(layer.bias.grad, g.sum(0))


# --- QuantConfig ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["2-2-8", "8-8-8", "4-4-8", "32-32-32", "1-2-8", "8-32-4"])
def test_config_parses_and_prints_back(text):
    cfg = QuantConfig.parse(text)
    assert str(cfg) == text
    assert (cfg.weight_bits, cfg.embedding_bits, cfg.activation_bits) == tuple(map(int, text.split("-")))


@pytest.mark.parametrize("text, message", [
    ("3-x-8", "embedding bits 'x' is not a whole number"),
    ("0-8-8", "weight_bits: 0 is not allowed"),
    ("8-8-16", "activation_bits: 16 is not allowed"),
    ("8-8-1", "activation_bits: 1 is not allowed"),
    ("8-8", "expected W-E-A bits"),
    ("8-8-8-8", "expected W-E-A bits"),
    ("-8-8", "weight bits '' is not a whole number"),
])
def test_bad_config_strings_are_clear_errors(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        QuantConfig.parse(text)
    assert repr(text) in str(info.value)


def test_config_options_and_quantizer_choice():
    cfg = QuantConfig.parse("2-2-8", clip_val=None)
    assert cfg.clip_val is None and QuantConfig.parse("8-8-8").clip_val == 2.5
    with pytest.raises(ConfigError, match="clip_val"):
        QuantConfig(clip_val=0)
    assert cfg.weight_quantizer(1, False).scheme == "binary"
    assert cfg.weight_quantizer(2, False).scheme == "ternary"
    assert QuantConfig(ternary=False).weight_quantizer(2, False).scheme == "symmetric"
    assert cfg.weight_quantizer(4, True).scheme == "symmetric"
    assert cfg.weight_quantizer(32, False).scheme is None  # NoQuant: the slot does not quantize
    assert QuantConfig.parse("8-8-32").activation_quantizer().scheme is None


def test_act_scale_is_checked_and_travels_with_the_config(tmp_path):
    with pytest.raises(ConfigError, match="act_scale: 'row' is not one of"):
        QuantConfig(act_scale="row")
    assert QuantConfig().act_scale == "tensor"  # DQ-BART's, the default
    model = quantize(Bart(tiny_config()), QuantConfig.parse("2-2-8", act_scale="token"))
    assert all(q.per_row for q in (model.encoder.layers[0].fc1.input_quant, model.decoder.layers[0].self_attn.k_act,
                                   model.decoder.layers[0].encoder_attn.probs_act, model.shared.input_quant))
    model.save_pretrained(tmp_path)  # quant_config.json
    assert Bart.from_pretrained(tmp_path).quant_config == model.quant_config


# --- quantize() on a whole model -------------------------------------------------------------------

def test_quantize_swaps_modules_keeps_parameters_and_state_dict(tmp_path):
    model = Bart(tiny_config())
    keys, params = list(model.state_dict()), {n: p for n, p in model.named_parameters()}
    quantize(model, "4-2-8")
    assert list(model.state_dict()) == keys
    assert all(p is params[n] for n, p in model.named_parameters())  # same objects: optimizers still work
    assert isinstance(model.shared, QuantEmbedding)
    assert model.encoder.embed_tokens is model.shared and model.decoder.embed_tokens is model.shared
    assert model.shared.weight_quant.scheme == "ternary" and model.shared.weight_quant.per_row
    layer = model.decoder.layers[0]
    for linear in (layer.self_attn.q_proj, layer.encoder_attn.out_proj, layer.fc1, layer.fc2):
        assert isinstance(linear, QuantLinear)
        assert (linear.weight_quant.scheme, linear.weight_quant.bits, linear.weight_quant.per_row) == ("symmetric", 4, False)
        assert linear.input_quant.bits == 8
    attn = layer.self_attn
    assert attn.q_act.clip == pytest.approx(2.5 / attn.scaling) and attn.k_act.clip == 2.5
    assert attn.probs_act.bits == attn.v_act.bits == 8
    assert type(model.encoder.embed_positions) is not QuantEmbedding and str(model.quant_config) == "4-2-8"

    # The LM head scores its quantized input (no clamp) against the very quantized embedding the inputs use.
    assert model.shared.input_quant.bits == 8 and model.shared.input_quant.clip is None
    ids = torch.randint(3, 64, (2, 6))
    out = model(ids, decoder_input_ids=ids, output_hidden_states=True)
    hidden = model.shared.input_quant(out.decoder_hidden_states[-1])
    assert not torch.equal(hidden, out.decoder_hidden_states[-1])
    head = F.linear(hidden, model.shared.quantized_weight()) + model.final_logits_bias
    torch.testing.assert_close(out.logits, head, rtol=1e-6, atol=1e-6)
    # ... computed as an integer machine does: exact sums of codes, then the two scales
    x_codes, x_scale = model.shared.input_quant.codes(out.decoder_hidden_states[-1])
    w_codes, w_scale = model.shared.weight_quant.codes(model.shared.weight)
    integer = (x_codes.double() @ w_codes.double().T).float() * (x_scale * w_scale.reshape(-1))
    cmp("logits vs integer codes times scales", out.logits, integer + model.final_logits_bias)

    # Saving writes the latent weights under the usual names; they load back into a plain Bart.
    model.save_pretrained(tmp_path)
    reloaded = Bart.from_pretrained(tmp_path)
    for name, tensor in reloaded.state_dict().items():
        cmp(name, tensor, model.state_dict()[name])

    quantize(model, "8-8-8")  # re-quantizing replaces the quantizers, not the weights
    assert model.decoder.layers[0].fc1.weight_quant.bits == 8 and str(model.quant_config) == "8-8-8"
    assert all(p is params[n] for n, p in model.named_parameters())


def test_32_32_32_is_off(hf_checkpoint):
    directory, _ = hf_checkpoint("bart")
    teacher = Bart.from_pretrained(directory)
    ids, dec = torch.randint(3, 99, (2, 10)), torch.randint(3, 99, (2, 7))
    student = quantize(copy.deepcopy(teacher), "32-32-32")
    with torch.no_grad():
        cmp("logits", student(ids, decoder_input_ids=dec).logits, teacher(ids, decoder_input_ids=dec).logits)


@pytest.mark.parametrize("kind", ["bart", "mbart"])
def test_8_8_8_keeps_teacher_logits_close(hf_checkpoint, kind):
    """Measured on these tiny random models (seeds 0-3): max |diff| <= 0.0037, and the error is
    <= 0.65% of the part of the logits the network computes (logits - final_logits_bias).
    Nearly all of it comes from the 8-bit embedding / LM head (32-8-32 alone gives the same)."""
    directory, _ = hf_checkpoint(kind)
    teacher = Bart.from_pretrained(directory)
    torch.manual_seed(0)
    ids, dec = torch.randint(3, 99, (2, 12)), torch.randint(3, 99, (2, 9))
    student = quantize(copy.deepcopy(teacher), "8-8-8")
    with torch.no_grad():
        ref = teacher(ids, decoder_input_ids=dec).logits
        got = student(ids, decoder_input_ids=dec).logits
    diff = got - ref
    assert diff.abs().max() < 0.01
    assert diff.norm() / (ref - teacher.final_logits_bias).norm() < 0.015
    assert diff.abs().max() > 0  # it did quantize something


def test_2_2_8_forward_backward_generate():
    torch.manual_seed(6)
    model = quantize(Bart(tiny_config()), "2-2-8")
    ids, labels = torch.randint(3, 64, (2, 8)), torch.randint(3, 64, (2, 5))
    out = model(ids, labels=labels, output_attentions=True)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name, p in model.named_parameters():
        if "layers" in name or name == "shared.weight":
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    # The attention maps handed to distillation are the unquantized probabilities (rows sum to 1).
    torch.testing.assert_close(out.encoder_attentions[0].sum(-1), torch.ones(2, 4, 8))

    model.eval()
    with torch.no_grad():  # greedy decoding through the KV cache, step by step
        enc = model.encoder(ids)
        tokens, cache = torch.full((2, 1), model.config.decoder_start_token_id), None
        for _ in range(6):
            step = model(encoder_outputs=enc, decoder_input_ids=tokens[:, -1:], past_key_values=cache, use_cache=True)
            cache = step.past_key_values
            tokens = torch.cat([tokens, step.logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert tokens.shape == (2, 7)
    generated = model.generate(ids, max_length=8, num_beams=2)
    assert generated.shape[0] == 2 and generated.shape[1] <= 8


def test_a_few_qat_steps_lower_the_loss():
    torch.manual_seed(7)
    model = quantize(Bart(tiny_config()), "2-2-8").train()
    ids, labels = torch.randint(3, 64, (4, 10)), torch.randint(3, 64, (4, 8))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = model(ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0], losses  # measured: 4.13 -> 2.99


def test_codes_and_scales_stay_float32_under_bf16_autocast():
    """A bfloat16 input (a matmul's output under autocast) is quantized in float32: bfloat16's 8
    significant bits would round x / scale to the wrong code; the STE's gradient is float32 too."""
    torch.manual_seed(0)
    x = (torch.randn(6, 32) * 2).bfloat16().requires_grad_()
    quantizer = QuantConfig(2, 2, 8).activation_quantizer()
    with torch.autocast("cpu", torch.bfloat16):
        codes, scale = quantizer.codes(x)
        y = quantizer(x)
    expected_codes, expected_scale = quantizer.codes(x.detach().float())
    assert scale.dtype == torch.float32 and torch.equal(scale, expected_scale)
    assert torch.equal(codes, expected_codes)
    assert y.dtype == torch.float32
    y.sum().backward()
    assert torch.equal(x.grad, ((x.detach().float().abs() <= 2.5).float()).bfloat16())


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("clip", [2.5, 2.5 / 0.35355339, None])
def test_inference_shortcut_is_bit_identical(bits, clip):
    """At inference a per-tensor symmetric quantizer takes a shortcut (fewer, larger passes over x);
    it must give exactly symmetric_codes' values: inside the clip, past it, all zeros, one token."""
    torch.manual_seed(bits)
    for x in (torch.randn(3, 7, 64), 3 * torch.randn(2, 64), 40 * torch.randn(1, 1, 64), torch.zeros(2, 8),
              torch.full((1, 4), -2.5)):
        values, scale = fake_symmetric(x, bits, clip)
        cmp("shortcut vs codes * scale", values, dequantize(*symmetric_codes(x, bits, clip=clip)))
        assert scale == symmetric_codes(x, bits, clip=clip)[1].item()
    assert torch.equal(Quantizer("symmetric", bits, clip=clip)(x), fake_symmetric(x, bits, clip)[0])


@pytest.mark.parametrize("bits", [2, 8])
def test_embedding_quantizes_only_the_rows_it_looks_up(bits):
    """With one scale per row, quantizing the looked-up rows is the lookup of the quantized table:
    the same values and the same STE gradient, without quantizing every row of the vocabulary."""
    from minidq.fakequant import Quantizer
    from minidq.quant import QuantEmbedding
    torch.manual_seed(0)
    table = nn.Embedding(50, 8, padding_idx=1)
    scheme = "ternary" if bits == 2 else "symmetric"
    emb = QuantEmbedding.from_embedding(table, Quantizer(scheme, bits, per_row=True, clip=0.5), NoQuant())
    ids = torch.tensor([[3, 1, 7, 3], [9, 9, 2, 1]])
    out = emb(ids)
    expected = F.embedding(ids, emb.quantized_weight(), 1)
    assert torch.equal(out, expected)
    (out * torch.arange(8.0)).sum().backward()
    fast = table.weight.grad.clone()
    table.weight.grad = None
    (expected * torch.arange(8.0)).sum().backward()
    assert torch.equal(fast, table.weight.grad)


def test_a_clip_set_after_construction_is_the_clip_used():
    """A calibrated clamp is set on a built quantizer: its codes, forward and STE all use it (the
    codes used to keep the clip of construction while the STE mask took the new one)."""
    from minidq.fakequant import Quantizer
    x = torch.linspace(-4, 4, 17, requires_grad=True)
    q = Quantizer("symmetric", 8)
    q.clip = 2.0
    reference = Quantizer("symmetric", 8, clip=2.0)
    assert torch.equal(q.codes(x.detach())[0], reference.codes(x.detach())[0])
    assert torch.equal(q(x), reference(x)) and q(x).max() == 2.0
    q(x).sum().backward()
    assert torch.equal(x.grad, (x.detach().abs() <= 2.0).float())
