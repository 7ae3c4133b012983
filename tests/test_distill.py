"""Students made of teacher layers, and distillation losses that are zero exactly when they should be."""

import pytest
import torch

from minidq import Bart, BartConfig
from minidq.data import Batches, Pair
from minidq.distill import (DistillConfig, DistillLoss, attention_loss, hidden_loss, logits_loss, make_student,
                            spaced_layers, spaced_map)
from minidq.quant import quantize


def teacher(layers: int = 6, kind: str = "bart") -> Bart:
    torch.manual_seed(0)
    return Bart(BartConfig(model_type=kind, vocab_size=60, d_model=16, encoder_layers=layers, decoder_layers=layers,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                           decoder_ffn_dim=32, max_position_embeddings=40, dropout=0.0)).eval()


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    pairs = [Pair([0] + torch.randint(4, 60, (n,), generator=g).tolist() + [2],
                  [0] + torch.randint(4, 60, (m,), generator=g).tolist() + [2]) for n, m in ((9, 5), (5, 3), (7, 6))]
    return next(iter(Batches(pairs, 3, pad_token_id=1, shuffle=False)))


def test_spaced_layers():
    assert [spaced_layers(6, n) for n in range(1, 7)] == [[5], [0, 5], [0, 2, 5], [0, 2, 3, 5], [0, 1, 3, 4, 5],
                                                          [0, 1, 2, 3, 4, 5]]
    assert spaced_layers(12, 3) == [0, 6, 11] and spaced_layers(12, 1) == [11] and spaced_layers(4, 2) == [0, 3]
    with pytest.raises(ValueError):
        spaced_layers(6, 7)


@pytest.mark.parametrize("kind", ["bart", "mbart"])
@pytest.mark.parametrize("layers,enc,dec", [(6, 6, 3), (6, 2, 1), (4, 3, 2), (12, 12, 1)])
def test_make_student_copies_the_mapped_tensors(kind, layers, enc, dec):
    t = teacher(layers, kind)
    s = make_student(t, enc, dec)
    layer_map = spaced_map(t, enc, dec)
    assert s.config.encoder_layers == enc and s.config.decoder_layers == dec
    ts, ss = t.state_dict(), s.state_dict()
    for key, value in ss.items():
        if ".layers." in key:
            side, _, i, rest = key.split(".", 3)
            source = f"{side}.layers.{layer_map[side][int(i)]}.{rest}"
        else:
            source = key
        assert torch.equal(value, ts[source]), key
    assert layer_map == {"encoder": spaced_layers(layers, enc), "decoder": spaced_layers(layers, dec)}


def test_explicit_layer_map_and_bad_map():
    t = teacher()
    custom = {"encoder": [1, 4], "decoder": [3, 3]}
    s = make_student(t, 2, 2, custom)
    assert torch.equal(s.encoder.layers[1].fc1.weight, t.encoder.layers[4].fc1.weight)
    # the loss pairs the layers as they were copied: the custom map, or the spaced one for the depth
    b = batch()
    out = s(b["input_ids"], b["attention_mask"], labels=b["labels"], output_attentions=True)
    assert DistillLoss(t, layer_map=custom).pairs(out) == ([1, 4], [3, 3])
    assert DistillLoss(t).pairs(out) == (spaced_layers(6, 2), spaced_layers(6, 2))
    with pytest.raises(ValueError, match="layer_map"):
        make_student(t, 2, 2, {"encoder": [1, 9], "decoder": [0, 1]})


def test_losses_zero_for_identical_outputs_positive_otherwise():
    t = teacher()
    b = batch()
    kwargs = dict(labels=b["labels"], output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        a = t(b["input_ids"], b["attention_mask"], **kwargs)
        s = make_student(t, 6, 3)
        c = s(b["input_ids"], b["attention_mask"], **kwargs)
    tgt = (b["labels"] != -100).long()
    src = b["attention_mask"]
    full = list(range(6))
    assert logits_loss(a.logits, a.logits, tgt) == 0 and logits_loss(a.logits, a.logits, tgt, "kl") == 0
    assert hidden_loss(a.encoder_hidden_states, a.encoder_hidden_states, full, src) == 0
    assert attention_loss(a.cross_attentions, a.cross_attentions, full, tgt, src) == 0
    assert logits_loss(c.logits, a.logits, tgt) > 0 and logits_loss(c.logits, a.logits, tgt, "kl") > 0
    assert hidden_loss(c.decoder_hidden_states, a.decoder_hidden_states, spaced_layers(6, 3), tgt) > 0
    assert attention_loss(c.decoder_attentions, a.decoder_attentions, spaced_layers(6, 3), tgt, tgt) > 0
    # a full-depth student is the teacher: every term is exactly zero
    loss, terms = DistillLoss(t, DistillConfig(ce=0.0))(make_student(t, 6, 6).eval(), b)
    assert loss == 0 and set(terms) == {"ce", "logits", "hidden", "attention"}


def test_padding_does_not_count():
    """Changing the outputs at padded positions leaves every term unchanged."""
    t = teacher()
    b = batch()
    with torch.no_grad():
        a = t(b["input_ids"], b["attention_mask"], labels=b["labels"], output_hidden_states=True)
    tgt, src = (b["labels"] != -100).long(), b["attention_mask"]
    noisy_logits = a.logits + 5 * (1 - tgt)[..., None]
    assert logits_loss(noisy_logits, a.logits, tgt) == 0
    noisy = tuple(h + 3 * (1 - src)[..., None] for h in a.encoder_hidden_states)
    assert hidden_loss(noisy, a.encoder_hidden_states, list(range(6)), src) == 0


def test_gradients_reach_only_the_student_and_joint_steps_lower_the_loss():
    t = teacher()
    before = {k: v.clone() for k, v in t.state_dict().items()}
    s = quantize(make_student(t, 6, 2), "2-2-8").train()
    loss_fn = DistillLoss(t)
    b = batch()
    optimizer = torch.optim.AdamW(s.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss, terms = loss_fn(s, b)
        loss.backward()
        assert all(p.grad is None for p in t.parameters())
        assert s.encoder.layers[0].fc1.weight.grad.abs().sum() > 0  # through the STE to the latent weights
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0]
    assert all(torch.equal(v, t.state_dict()[k]) for k, v in before.items())


def test_summed_terms_are_the_authors_sum_over_layers():
    """reduction="sum" adds every layer pair's MSE (plus the per-example encoder-output term), as
    run_summarization_no_trainer.py does; "mean" averages them. Checked term by term here."""
    t = teacher()
    s = make_student(t, 6, 3)
    with torch.no_grad():
        for p in s.parameters():
            p.add_(0.05 * torch.randn_like(p))
    b = batch()
    _, mean_terms = DistillLoss(t, DistillConfig())(s, b)
    _, sum_terms = DistillLoss(t, DistillConfig(reduction="sum"))(s, b)
    flags = dict(output_hidden_states=True, output_attentions=True)
    out = s(b["input_ids"], b["attention_mask"], labels=b["labels"], **flags)
    ref = t(b["input_ids"], b["attention_mask"], decoder_input_ids=s.shift_right(b["labels"]), **flags)
    src, tgt = b["attention_mask"], (b["labels"] != -100).long()
    enc_pairs = [(0, 0)] + [(i + 1, i + 1) for i in range(6)]
    dec_pairs = [(0, 0), (1, 1), (2, 3), (3, 6)]  # student layers 1-3 <- teacher layers 1, 3, 6 (0, 2, 5 zero-based)
    from minidq.distill import masked_mse
    enc = [masked_mse(out.encoder_hidden_states[a], ref.encoder_hidden_states[c], src[..., None]) for a, c in enc_pairs]
    dec = [masked_mse(out.decoder_hidden_states[a], ref.decoder_hidden_states[c], tgt[..., None]) for a, c in dec_pairs]
    last = masked_mse(out.encoder_last_hidden_state, ref.encoder_last_hidden_state, src[..., None]) * 3
    assert sum_terms["hidden"] == pytest.approx((sum(enc) + sum(dec) + last).item(), rel=1e-5)
    assert mean_terms["hidden"] == pytest.approx(((sum(enc) / 7 + sum(dec) / 4) / 2).item(), rel=1e-5)
    assert sum_terms["attention"] > 2 * mean_terms["attention"] > 0
    assert sum_terms["logits"] == pytest.approx(mean_terms["logits"])
    weighted = DistillConfig.weighted()
    assert (weighted.logits, weighted.hidden, weighted.attention, weighted.reduction) == (0.8, 3.0, 3.0, "sum")
    with pytest.raises(ValueError, match="reduction"):
        DistillConfig(reduction="max")


def test_each_distill_loss_has_its_own_default_config():
    """DistillLoss(teacher) used to share one DistillConfig() instance: changing one changed all."""
    t = teacher(1)
    a, b = DistillLoss(t), DistillLoss(t)
    a.cfg.hidden = 0.0
    assert b.cfg.hidden == 1.0 and DistillLoss(t).cfg == DistillConfig()


@pytest.mark.parametrize("flags, clip, per_row, lr", [
    ([], 2.5, False, 5e-4),                                   # paper: DQ-BART's clamp, per-tensor weight scales
    (["--recipe", "minidq"], None, True, 1e-4),
    (["--recipe", "minidq", "--clip-val", "4", "--lr", "3e-4"], 4.0, True, 3e-4),  # explicit flags win
    (["--no-clip"], None, False, 5e-4),
])
def test_recipes_and_their_flags(tmp_path, capsys, flags, clip, per_row, lr):
    """--recipe sets the quantizer options and the learning rate; an explicit flag overrides it."""
    import json
    from minidq.cli import main
    from minidq.export import load_packed
    from test_cli import TEACHER

    data = tmp_path / "data"
    data.mkdir()
    source = TEACHER.parent
    for split in ("train", "valid"):
        (data / f"{split}.jsonl").write_text("".join((source / f"{split}.jsonl").read_text().splitlines(True)[:8]))
    code = main([str(a) for a in ["distill", "--teacher", TEACHER, "--data", data, "--out", tmp_path / "run",
                                  "--layers", "1-1", "--max-steps", 1, "--batch-size", 8, "--eval-examples", 0,
                                  *flags]])
    assert code == 0, capsys.readouterr().err
    q = load_packed(tmp_path / "run" / "student.packed").quant_config
    assert (q.clip_val, q.weight_per_row) == (clip, per_row)
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["lr"] == lr


def test_parse_layers_is_the_one_layer_spec_parser():
    from minidq.config import ConfigError
    from minidq.distill import parse_layers
    assert parse_layers("6-3") == (6, 3) and parse_layers(" 12-1 ") == (12, 1)
    for bad in ("6", "6-3-1", "6-0", "a-b", "-3", "6-²"):
        with pytest.raises(ConfigError, match="encoder-decoder layers"):
            parse_layers(bad)
