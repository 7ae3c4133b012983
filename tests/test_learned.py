"""Learned quantizer scales (LSQ, elastic): hand-derived gradients equal autograd's of the papers'
formulation, export -> reload is exact, and the integer path agrees with the fake one."""

import copy
import math

import pytest
import torch

from minidq import QuantConfig
from minidq.config import ConfigError
from minidq.export import footprint, load_packed, read_packed, save_packed
from minidq.deploy.intinfer import IntEmbedding, IntLinear
from minidq.learned import LSQ, Elastic, LSQFunction, learned_parameters
from minidq.quant import quantize
from minidq.train import TrainConfig, make_optimizer
from test_export import assert_identical, batch, outputs, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the gradients, three ways: our Function, autograd of LSQ's reference code, the formula by hand

def grad_scale(s: torch.Tensor, g: float) -> torch.Tensor:
    """LSQ's reference trick: the value of s, the gradient of g * s."""
    return (s - s * g).detach() + s * g


def round_pass(v: torch.Tensor) -> torch.Tensor:
    """round(v) forward, identity backward (the straight-through estimator)."""
    return (v.round() - v).detach() + v


# values inside the grid, on both sides of it, and exactly on a rounding boundary
X = torch.tensor([[-0.9, -0.31, -0.05, 0.0, 0.12, 0.25, 0.4, 2.3],
                  [0.5, -3.0, 0.07, 0.2, -0.2, 0.33, 1.1, -0.6]], dtype=torch.float64)
UPSTREAM = torch.linspace(-1.0, 1.3, X.numel(), dtype=torch.float64).view_as(X)


@pytest.mark.parametrize("bits", [2, 3, 8])
@pytest.mark.parametrize("per_row", [False, True])
def test_lsq_gradients_equal_the_formula(bits, per_row):
    qp = 2 ** (bits - 1) - 1
    s = torch.tensor([[0.1], [0.3]] if per_row else 0.1, dtype=torch.float64)
    numel = X.shape[-1] if per_row else X.numel()
    g = 1 / math.sqrt(numel * qp)  # LSQ's gradient scale

    x, step = X.clone().requires_grad_(), s.clone().requires_grad_()
    LSQFunction.apply(x, step, None, -qp, qp, g).backward(UPSTREAM)

    x_ref, step_ref = X.clone().requires_grad_(), s.clone().requires_grad_()
    s_g = grad_scale(step_ref, g)
    (round_pass((x_ref / s_g).clamp(-qp, qp)) * s_g).backward(UPSTREAM)

    v = X / s
    inside = (v >= -qp) & (v <= qp)
    by_hand = torch.where(inside, v.round() - v, torch.where(v < -qp, -qp, qp).to(X.dtype)) * UPSTREAM * g
    by_hand = by_hand.sum(-1, keepdim=True) if per_row else by_hand.sum()

    torch.testing.assert_close(step.grad, by_hand, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(step_ref.grad, by_hand, rtol=1e-12, atol=1e-15)
    assert torch.equal(x.grad, UPSTREAM * inside)
    torch.testing.assert_close(x_ref.grad, x.grad, rtol=1e-12, atol=0)  # the reference's (1 / s) * s is not always 1


def test_elastic_gradients_equal_the_formula():
    qn, qp = -4, 3  # 3 bits, all 8 codes
    a, b, g = torch.tensor(0.2, dtype=torch.float64), torch.tensor(0.1, dtype=torch.float64), 0.05
    x, scale, offset = X.clone().requires_grad_(), a.clone().requires_grad_(), b.clone().requires_grad_()
    LSQFunction.apply(x, scale, offset, qn, qp, g).backward(UPSTREAM)

    x_ref, a_ref, b_ref = X.clone().requires_grad_(), a.clone().requires_grad_(), b.clone().requires_grad_()
    a_g, b_g = grad_scale(a_ref, g), grad_scale(b_ref, g)
    (round_pass(((x_ref - b_g) / a_g).clamp(qn, qp)) * a_g + b_g).backward(UPSTREAM)

    v = (X - b) / a
    inside = (v >= qn) & (v <= qp)
    d_scale = torch.where(inside, v.round() - v, torch.where(v < qn, qn, qp).to(X.dtype))
    for got in (scale.grad, a_ref.grad):
        torch.testing.assert_close(got, (d_scale * UPSTREAM).sum() * g, rtol=1e-12, atol=1e-15)
    for got in (offset.grad, b_ref.grad):
        torch.testing.assert_close(got, (UPSTREAM * ~inside).sum() * g, rtol=1e-12, atol=1e-15)
    assert torch.equal(x.grad, UPSTREAM * inside)
    torch.testing.assert_close(x_ref.grad, x.grad, rtol=1e-12, atol=0)


def test_first_batch_sets_the_scales_and_later_ones_do_not():
    lsq, elastic = LSQ(8), Elastic(8)
    x = torch.tensor([-1.0, 0.5, 3.0, 0.25])
    lsq(x), elastic(x)
    assert lsq.scale.item() == pytest.approx(2 * x.abs().mean().item() / math.sqrt(127))
    codes, scale, offset = elastic.codes(x)  # the first batch's min..max spans every code
    assert (codes.min().item(), codes.max().item()) == (-128, 127)
    before = (lsq.scale.item(), elastic.scale.item(), elastic.offset.item())
    lsq(10 * x), elastic(10 * x)
    assert (lsq.scale.item(), elastic.scale.item(), elastic.offset.item()) == before


# --- configs, export and reload

LEARNED = {
    "lsq 2-2-8": QuantConfig(2, 2, 8, weight_method="lsq", act_method="lsq"),
    "lsq 4-8-8 per-row": QuantConfig(4, 8, 8, weight_method="lsq", act_method="lsq", weight_per_row=True),
    "elastic 2-2-8": QuantConfig(2, 2, 8, act_method="elastic"),
    "lsq + elastic 3-3-4": QuantConfig(3, 3, 4, weight_method="lsq", act_method="elastic"),
    "lsq weights only 2-2-8": QuantConfig(2, 2, 8, weight_method="lsq"),
}


def trained(cfg: QuantConfig):
    """A tiny quantized model after one forward (the scales set from data) and one optimizer step,
    so that every learned scale and offset is off its initial value."""
    model = quantize(tiny_model(), cfg).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    b = batch(model.config.vocab_size)
    model(b["input_ids"], b["attention_mask"], labels=b["decoder_input_ids"]).loss.backward()
    optimizer.step()
    return model.eval()


@pytest.mark.parametrize("quant", LEARNED)
def test_learned_scales_train(quant):
    model = quantize(tiny_model(), LEARNED[quant]).train()
    b = batch(model.config.vocab_size)
    model(b["input_ids"], b["attention_mask"], labels=b["decoder_input_ids"]).loss.backward()
    names = learned_parameters(model)
    assert names and all(".scale" in n or ".offset" in n for n in names)
    grads = {n: p.grad for n, p in model.named_parameters() if n in names}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert sum(g.abs().sum().item() > 0 for g in grads.values()) > len(grads) // 2


def test_learned_scales_are_not_weight_decayed():
    model = quantize(tiny_model(), LEARNED["lsq + elastic 3-3-4"])
    decayed = {id(p) for group in make_optimizer(model, TrainConfig()).param_groups
               if group["weight_decay"] > 0 for p in group["params"]}
    named = dict(model.named_parameters())
    assert not any(id(named[n]) in decayed for n in learned_parameters(model) if n in named)


@pytest.mark.parametrize("quant", LEARNED)
def test_export_reload_is_exact(quant, tmp_path):
    model = trained(LEARNED[quant])
    save_packed(model, tmp_path / "m.packed", float_dtype="fp32")
    fake = load_packed(tmp_path / "m.packed", backend="fake")
    assert fake.quant_config == model.quant_config
    for name, module in model.named_modules():
        if hasattr(module, "quantized_weight"):  # the very weights the fake-quantized forward used
            assert torch.equal(fake.get_submodule(name).weight, module.quantized_weight())
    for name, p in model.named_parameters():
        if name in learned_parameters(model) and ".weight_quant." not in name:
            assert torch.equal(fake.get_parameter(name), p)
    if model.quant_config.act_method != "max":
        assert_identical(fake, model)
    else:  # LSQ weights, max-abs inputs: the trained model multiplies floats, the frozen one integer codes
        torch.testing.assert_close(outputs(fake)[0], outputs(model)[0], rtol=0, atol=1e-5)
    save_packed(fake, tmp_path / "again.packed", float_dtype="fp32")  # the same content again
    assert read_packed(tmp_path / "m.packed")[0]["sha256"] == read_packed(tmp_path / "again.packed")[0]["sha256"]


@pytest.mark.parametrize("quant", LEARNED)
def test_integer_and_fake_paths_agree(quant, tmp_path):
    model = trained(LEARNED[quant])
    save_packed(model, tmp_path / "m.packed")  # fp16 floats; the learned activation scales stay fp32
    metadata, tensors = read_packed(tmp_path / "m.packed")
    assert all(tensors[n].dtype == torch.float32 for n in learned_parameters(model) if n in tensors)
    integer, fake = load_packed(tmp_path / "m.packed"), load_packed(tmp_path / "m.packed", backend="fake")
    assert any(isinstance(m, IntLinear) for m in integer.modules())
    assert isinstance(integer.shared, IntEmbedding)
    (li, *tokens_i), (lf, *tokens_f) = outputs(integer), outputs(fake)
    torch.testing.assert_close(li, lf, rtol=0, atol=1e-3)
    assert all(torch.equal(a, b) for a, b in zip(tokens_i, tokens_f))
    assert footprint(tmp_path / "m.packed").rows["scales"][1] > 0


def test_learned_checkpoint_reloads(tmp_path):
    """save_pretrained / from_pretrained carry the learned scales (a QAT run's best/)."""
    from minidq import Bart

    model = trained(LEARNED["lsq + elastic 3-3-4"])
    model.save_pretrained(tmp_path)
    assert_identical(Bart.from_pretrained(tmp_path), model)


@pytest.mark.parametrize("options, named", [
    (dict(weight_method="lsq", weight_bits=1), "1 bit"),
    (dict(weight_method="lsq", embedding_bits=1), "1 bit"),
    (dict(act_method="lsq", act_scale="token"), "act_scale"),
    (dict(act_method="minmax"), "act_method"),
    (dict(weight_method="twn"), "weight_method"),
])
def test_bad_learned_configs(options, named):
    with pytest.raises(ConfigError, match=named):
        QuantConfig(**{"weight_bits": 2, "embedding_bits": 2, "activation_bits": 8, **options})


def test_deepcopy_keeps_learned_scales():
    """The demo and tests copy quantized models: the scales are ordinary parameters."""
    model = trained(LEARNED["elastic 2-2-8"])
    assert_identical(copy.deepcopy(model), model)
