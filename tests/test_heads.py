"""Attention-head pruning: importance (against finite differences), pruning for real (against the
gated model and against transformers' head masks), save/load, packing and distillation."""

import pytest
import torch

from minidq.config import BartConfig, ConfigError
from minidq.distill import DistillConfig, DistillLoss, make_student
from minidq.export import load_packed, save_packed
from minidq.heads import attention_paths, choose_heads, gated, head_importance, prune_least_important
from minidq.model import Bart
from minidq.quant import QuantConfig, quantize
from minidq.train import task_loss

pytestmark = pytest.mark.usefixtures("one_thread")

PRUNED = {"encoder.layers.1.self_attn": [0, 2], "decoder.layers.0.self_attn": [1],
          "decoder.layers.1.encoder_attn": [3]}


def tiny(seed: int = 0, dtype=torch.float32) -> Bart:
    torch.manual_seed(seed)
    cfg = BartConfig(vocab_size=61, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=40, decoder_ffn_dim=40,
                     max_position_embeddings=32, dropout=0.0, init_std=0.2)
    return Bart(cfg).to(dtype).eval()


def batch(seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 61, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    labels = torch.randint(4, 61, (3, 6), generator=g)
    labels[1, 4:] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_importance_is_the_gradient_of_the_loss_by_the_gate():
    model, b = tiny(dtype=torch.float64), batch()
    importance = head_importance(model, [b], task_loss, normalize=False)
    eps = 1e-4
    for path, head in (("encoder.layers.0.self_attn", 1), ("decoder.layers.1.self_attn", 3),
                       ("decoder.layers.0.encoder_attn", 0)):
        losses = []
        for sign in (1, -1):
            gates = {path: torch.ones(4, dtype=torch.float64)}
            gates[path][head] += sign * eps
            with torch.no_grad(), gated(model, gates):
                losses.append(task_loss(model, b)[0].item())
        assert importance[path][head].item() == pytest.approx(abs(losses[0] - losses[1]) / (2 * eps), rel=1e-5)


def test_normalized_importance_has_unit_norm_per_module_and_accumulates_over_batches():
    model = tiny()
    one = head_importance(model, [batch(1)], task_loss, normalize=False)
    two = head_importance(model, [batch(1), batch(2)], task_loss, normalize=False)
    other = head_importance(model, [batch(2)], task_loss, normalize=False)
    for path in one:
        assert torch.allclose(two[path], one[path] + other[path])
    for v in head_importance(model, [batch(1)], task_loss).values():
        assert v.norm().item() == pytest.approx(1.0)


def test_a_pruned_model_equals_the_model_with_those_heads_gated_off():
    model, b = tiny(), batch()
    gates = {path: torch.tensor([0.0 if h in PRUNED.get(path, ()) else 1.0 for h in range(4)])
             for path in attention_paths(model)}
    with torch.no_grad(), gated(model, gates):
        reference = model(**b).logits
    model.prune_heads(PRUNED)
    assert model.encoder.layers[1].self_attn.q_proj.weight.shape == (16, 32)  # 2 of 4 heads of 8 dims
    assert model.decoder.layers[1].encoder_attn.out_proj.weight.shape == (32, 24)
    assert model.config.pruned_attention_heads == PRUNED
    with torch.no_grad():
        assert torch.allclose(model(**b).logits, reference, atol=1e-5)
        assert not torch.allclose(tiny()(**b).logits, reference, atol=1e-3)  # the gates did change it


def test_pruned_bart_matches_transformers_with_those_heads_silenced(hf_checkpoint):
    """transformers' BART cannot prune heads (and its head_mask is gone in v5): the oracle is the
    unpruned HF model with the pruned heads' columns of out_proj set to zero."""
    directory, hf = hf_checkpoint("bart", decoder_attention_heads=4, init_std=0.2)
    model = Bart.from_pretrained(directory)
    pruned = {"encoder.layers.0.self_attn": [3], "decoder.layers.2.self_attn": [0, 1],
              "decoder.layers.1.encoder_attn": [2]}
    b = batch()
    b["input_ids"] = b["input_ids"] % 99
    b["labels"] = b["labels"].clamp(max=98)
    with torch.no_grad():
        unpruned = hf(b["input_ids"], b["attention_mask"], labels=b["labels"]).logits
        for path, heads in pruned.items():
            out_proj = hf.model.get_submodule(path).out_proj
            for h in heads:
                out_proj.weight[:, h * 8:(h + 1) * 8] = 0
        ref = hf(b["input_ids"], b["attention_mask"], labels=b["labels"]).logits
        model.prune_heads(pruned)
        assert torch.allclose(model(**b).logits, ref, atol=1e-4)
        assert not torch.allclose(unpruned, ref, atol=1e-2)  # the pruned heads did matter


def test_a_pruned_model_saves_reloads_and_generates(tmp_path):
    model, b = tiny(), batch()
    model.prune_heads(PRUNED)
    model.save_pretrained(tmp_path / "m")
    loaded = Bart.from_pretrained(tmp_path / "m")
    assert loaded.config.pruned_attention_heads == PRUNED
    with torch.no_grad():
        assert torch.equal(loaded(**b).logits, model(**b).logits)
    assert torch.equal(loaded.generate(b["input_ids"], b["attention_mask"], num_beams=3, max_length=8),
                       model.generate(b["input_ids"], b["attention_mask"], num_beams=3, max_length=8))


@pytest.mark.parametrize("backend", ["fake", "integer"])
def test_a_pruned_quantized_model_packs_and_reloads_exactly(tmp_path, backend):
    model, b = tiny(), batch()
    model.prune_heads(PRUNED)
    quantize(model, QuantConfig.parse("2-2-8"))
    save_packed(model, tmp_path / "s.packed", float_dtype="fp32")
    loaded = load_packed(tmp_path / "s.packed", backend=backend)
    assert loaded.config.pruned_attention_heads == PRUNED
    assert loaded.decoder.layers[0].self_attn.num_heads == 3
    with torch.no_grad():
        assert torch.allclose(loaded(**b).logits, model(**b).logits, atol=1e-4)
    assert torch.equal(loaded.generate(b["input_ids"], b["attention_mask"], num_beams=2, max_length=8),
                       model.generate(b["input_ids"], b["attention_mask"], num_beams=2, max_length=8))


def test_choose_heads_prunes_the_least_important_and_keeps_one_per_module():
    importance = {"a": torch.tensor([0.1, 0.9, 0.2, 0.8]), "b": torch.tensor([0.05, 0.06, 0.07, 0.5])}
    assert choose_heads(importance, 0.25) == {"b": [0, 1]}  # one ranking over the whole model
    assert choose_heads(importance, 0.5) == {"a": [0], "b": [0, 1, 2]}
    assert choose_heads(importance, 0.75) == {"a": [0, 2, 3], "b": [0, 1, 2]}  # b keeps its best head
    assert choose_heads(importance, 0.0) == {}
    with pytest.raises(ConfigError, match="fraction"):
        choose_heads(importance, 1.0)


def test_prune_least_important_removes_the_fraction_and_records_it():
    model = tiny()
    heads = prune_least_important(model, [batch(1), batch(2)], task_loss, 0.5)
    assert sum(map(len, heads.values())) == 12  # half of 6 modules x 4 heads
    assert sum(m.num_heads for m in attention_paths(model).values()) == 12
    assert model.config.pruned_attention_heads == heads


def test_pruning_refuses_what_it_cannot_do():
    model = tiny()
    with pytest.raises(ConfigError, match="keep at least one"):
        model.prune_heads({"encoder.layers.0.self_attn": [0, 1, 2, 3]})
    with pytest.raises(ConfigError, match="not an attention module"):
        model.prune_heads({"encoder.layers.0.encoder_attn": [0]})
    model.prune_heads({"encoder.layers.0.self_attn": [0]})
    with pytest.raises(ConfigError, match="head 0 already pruned"):
        model.prune_heads({"encoder.layers.0.self_attn": [0, 1]})
    with pytest.raises(ConfigError, match="keep at least one"):
        model.prune_heads({"encoder.layers.0.self_attn": [1, 2, 3]})
    with pytest.raises(ConfigError, match="then quantize"):
        quantize(tiny(), QuantConfig.parse("8-8-8")).prune_heads({"encoder.layers.0.self_attn": [0]})


def test_a_bad_pruned_heads_entry_in_config_json_names_itself(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path)
    text = (tmp_path / "config.json").read_text().replace('"init_std"', '"pruned_attention_heads": '
                                                          '{"decoder.layers.0.self_attn": [7]},\n  "init_std"')
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ConfigError, match=r"pruned_attention_heads\['decoder.layers.0.self_attn'\]: \[7\]"):
        Bart.from_pretrained(tmp_path)


def test_distillation_compares_kept_heads_with_the_same_teacher_heads():
    """A student equal to the teacher but for the last cross-attention's pruned heads has the
    teacher's attention maps on every kept head: the attention term is 0 only if each kept head is
    paired with the teacher head it came from."""
    teacher, b = tiny(), batch()
    student = make_student(teacher, 2, 2)
    pruned = {"decoder.layers.1.encoder_attn": [0, 2]}
    student.prune_heads(pruned)
    cfg = DistillConfig(ce=0.0, logits=0.0, hidden=0.0, attention=1.0)
    _, terms = DistillLoss(teacher, cfg, pruned_heads=pruned)(student, b)
    assert terms["attention"] == pytest.approx(0.0, abs=1e-12)
    _, wrong = DistillLoss(teacher, cfg, pruned_heads={"decoder.layers.1.encoder_attn": [2, 3]})(student, b)
    assert wrong["attention"] > 1e-6


def test_pruning_again_removes_more_heads_by_their_original_indices():
    model, b = tiny(), batch()
    gates = {"decoder.layers.0.encoder_attn": torch.tensor([1.0, 0.0, 1.0, 0.0])}
    with torch.no_grad(), gated(model, gates):
        reference = model(**b).logits
    model.prune_heads({"decoder.layers.0.encoder_attn": [3]})
    model.prune_heads({"decoder.layers.0.encoder_attn": [1]})  # original index 1, still index 1 of 3
    assert model.config.pruned_attention_heads == {"decoder.layers.0.encoder_attn": [1, 3]}
    with torch.no_grad():
        assert torch.allclose(model(**b).logits, reference, atol=1e-5)


def test_iterative_pruning_reaches_the_same_count_in_rounds():
    one_shot, rounds = tiny(), tiny()
    batches = [batch(1), batch(2)]
    a = prune_least_important(one_shot, batches, task_loss, 0.5)
    b = prune_least_important(rounds, batches, task_loss, 0.5, steps=3)
    assert sum(map(len, a.values())) == sum(map(len, b.values())) == 12
    assert rounds.config.pruned_attention_heads == b
