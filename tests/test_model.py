"""Parity with transformers: logits, loss, every hidden state and attention map, and the KV cache."""

import pytest
import torch

from minidq import Bart

FIELDS = ("encoder_hidden_states", "decoder_hidden_states", "encoder_attentions",
          "decoder_attentions", "cross_attentions")


def batch(vocab: int = 99, src_len: int = 11, tgt_len: int = 7, seed: int = 1):
    """Two examples; the second is padded on the source side and on the label side."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(4, vocab, (2, src_len), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, src_len - 4:] = 0
    input_ids[1, src_len - 4:] = 1
    labels = torch.randint(4, vocab, (2, tgt_len), generator=g)
    labels[1, tgt_len - 2:] = -100
    return input_ids, attention_mask, labels


@pytest.mark.parametrize("kind,overrides", [
    ("bart", {}),
    ("bart", {"scale_embedding": True, "encoder_attention_heads": 8, "decoder_attention_heads": 1}),
    ("bart", {"activation_function": "relu"}),
    ("mbart", {}),
    ("mbart", {"scale_embedding": False, "decoder_attention_heads": 4}),
])
@pytest.mark.parametrize("tgt_len", [1, 7])
def test_forward_matches_transformers(hf_checkpoint, kind, overrides, tgt_len):
    directory, hf = hf_checkpoint(kind, **overrides)
    model = Bart.from_pretrained(directory)
    input_ids, attention_mask, labels = batch(tgt_len=tgt_len)
    if tgt_len == 1:
        labels[1, 0] = 5  # keep one real label in every row
    kwargs = dict(attention_mask=attention_mask, labels=labels, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        ref = hf(input_ids=input_ids, **kwargs)
        out = model(input_ids, **kwargs)
    assert (out.logits - ref.logits).abs().max() < 1e-4
    assert (out.loss - ref.loss).abs() < 1e-4
    for field in FIELDS:
        ours, theirs = getattr(out, field), getattr(ref, field)
        assert len(ours) == len(theirs), field
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert a.shape == b.shape, (field, i)
            assert (a - b).abs().max() < 1e-4, (field, i)


@pytest.mark.parametrize("kind", ["bart", "mbart"])
def test_explicit_decoder_inputs_and_no_mask(hf_checkpoint, kind):
    directory, hf = hf_checkpoint(kind)
    model = Bart.from_pretrained(directory)
    input_ids, _, _ = batch()
    decoder_input_ids = torch.randint(4, 99, (2, 5))
    with torch.no_grad():
        ref = hf(input_ids=input_ids, decoder_input_ids=decoder_input_ids).logits
        out = model(input_ids, decoder_input_ids=decoder_input_ids).logits
    assert (out - ref).abs().max() < 1e-4


@pytest.mark.parametrize("kind", ["bart", "mbart"])
def test_shift_right_matches_transformers(hf_checkpoint, kind):
    import transformers

    directory, hf = hf_checkpoint(kind)
    model = Bart.from_pretrained(directory)
    _, _, labels = batch()
    if kind == "bart":
        ref = transformers.models.bart.modeling_bart.shift_tokens_right(labels, 1, hf.config.decoder_start_token_id)
    else:
        ref = transformers.models.mbart.modeling_mbart.shift_tokens_right(labels, 1)
    assert torch.equal(model.shift_right(labels), ref)


@pytest.mark.parametrize("kind", ["bart", "mbart"])
def test_kv_cache_step_by_step_equals_full_pass(hf_checkpoint, kind):
    directory, _ = hf_checkpoint(kind)
    model = Bart.from_pretrained(directory)
    input_ids, attention_mask, _ = batch()
    decoder_input_ids = torch.randint(4, 99, (2, 6))
    with torch.no_grad():
        full = model(input_ids, attention_mask, decoder_input_ids=decoder_input_ids).logits
        encoder_outputs = model.encoder(input_ids, attention_mask)
        cache, steps = None, []
        for t in range(decoder_input_ids.shape[1]):
            out = model(attention_mask=attention_mask, decoder_input_ids=decoder_input_ids[:, t:t + 1],
                        encoder_outputs=encoder_outputs, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            steps.append(out.logits)
    assert (torch.cat(steps, dim=1) - full).abs().max() < 1e-5


def test_training_mode_dropout_and_backward():
    from minidq import BartConfig

    config = BartConfig(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32)
    model = Bart(config).train()
    input_ids, attention_mask, labels = batch(vocab=50)
    loss = model(input_ids, attention_mask, labels=labels).loss
    loss.backward()
    assert model.shared.weight.grad is not None and model.shared.weight.grad.abs().sum() > 0
    assert model.encoder.embed_tokens is model.shared and model.decoder.embed_tokens is model.shared
