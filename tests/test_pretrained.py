"""Checkpoint round trips with transformers, and loud errors for broken checkpoints."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from minidq import Bart, BartConfig
from minidq.config import ConfigError
from minidq.pretrained import CheckpointError


def logits(model, input_ids):
    decoder_input_ids = input_ids[:, :5]
    with torch.no_grad():
        return model(input_ids=input_ids, decoder_input_ids=decoder_input_ids).logits


@pytest.mark.parametrize("kind", ["bart", "mbart"])
def test_minidq_to_transformers_round_trip(hf_checkpoint, tmp_path, kind):
    import transformers

    directory, hf = hf_checkpoint(kind)
    model = Bart.from_pretrained(directory)
    model.save_pretrained(tmp_path / "ours")
    cls = transformers.BartForConditionalGeneration if kind == "bart" else transformers.MBartForConditionalGeneration
    reloaded = cls.from_pretrained(tmp_path / "ours").eval()
    input_ids = torch.randint(4, 99, (2, 9))
    assert (logits(reloaded, input_ids) - logits(hf, input_ids)).abs().max() < 1e-5
    assert (logits(Bart.from_pretrained(tmp_path / "ours"), input_ids) - logits(model, input_ids)).abs().max() == 0


def test_fresh_minidq_model_loads_in_transformers(tmp_path):
    import transformers

    config = BartConfig(vocab_size=77, d_model=24, encoder_layers=1, decoder_layers=2, encoder_attention_heads=3,
                        decoder_attention_heads=2, encoder_ffn_dim=30, decoder_ffn_dim=20,
                        max_position_embeddings=40, scale_embedding=True)
    model = Bart(config).eval()
    model.save_pretrained(tmp_path)
    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    input_ids = torch.randint(4, 77, (3, 8))
    assert (logits(hf, input_ids) - logits(model, input_ids)).abs().max() < 1e-5


def test_pytorch_model_bin_loads(hf_checkpoint, tmp_path):
    directory, hf = hf_checkpoint("bart")
    state = load_file(directory / "model.safetensors")
    (directory / "model.safetensors").unlink()
    torch.save(state, directory / "pytorch_model.bin")
    model = Bart.from_pretrained(directory)
    input_ids = torch.randint(4, 99, (2, 9))
    assert (logits(model, input_ids) - logits(hf, input_ids)).abs().max() < 1e-5


def test_lm_head_alias_is_accepted(hf_checkpoint):
    """Older checkpoints store every tied alias (lm_head, encoder/decoder embed_tokens) explicitly."""
    directory, hf = hf_checkpoint("bart")
    state = load_file(directory / "model.safetensors")
    shared = state["model.shared.weight"]
    for alias in ("lm_head.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"):
        state[alias] = shared.clone()
    save_file(state, directory / "model.safetensors")
    input_ids = torch.randint(4, 99, (2, 9))
    assert (logits(Bart.from_pretrained(directory), input_ids) - logits(hf, input_ids)).abs().max() < 1e-5


def test_missing_unexpected_and_misshaped_tensors_are_named(hf_checkpoint):
    directory, _ = hf_checkpoint("bart")
    state = load_file(directory / "model.safetensors")
    del state["model.encoder.layers.0.fc1.weight"]
    state["model.decoder.layers.1.fc2.bias"] = torch.zeros(3)
    state["model.encoder.extra.weight"] = torch.zeros(2)
    save_file(state, directory / "model.safetensors")
    with pytest.raises(CheckpointError) as err:
        Bart.from_pretrained(directory)
    message = str(err.value)
    assert "missing tensors: encoder.layers.0.fc1.weight" in message
    assert "unexpected tensors: encoder.extra.weight" in message
    assert "decoder.layers.1.fc2.bias: checkpoint (3,) vs model (32,)" in message


def test_corrupt_and_absent_weights(hf_checkpoint):
    directory, _ = hf_checkpoint("bart")
    data = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read weights"):
        Bart.from_pretrained(directory)
    (directory / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights found"):
        Bart.from_pretrained(directory)


def test_pickled_code_is_not_executed(hf_checkpoint):
    """weights_only=True: a .bin carrying an arbitrary object is refused, not unpickled."""
    directory, _ = hf_checkpoint("bart")
    (directory / "model.safetensors").unlink()
    torch.save({"x": print}, directory / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        Bart.from_pretrained(directory)


def test_config_errors(hf_checkpoint):
    directory, _ = hf_checkpoint("bart")
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "model_type": "t5"}))
    with pytest.raises(ConfigError, match="model_type: 't5' is not supported"):
        Bart.from_pretrained(directory)
    del config["d_model"]
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="missing required key.*d_model"):
        Bart.from_pretrained(directory)
    with pytest.raises(ConfigError, match="activation_function"):
        BartConfig(activation_function="mish")


def test_config_json_round_trip(tmp_path):
    config = BartConfig(model_type="mbart", vocab_size=10, d_model=8, encoder_attention_heads=2,
                        decoder_attention_heads=2, forced_bos_token_id=7)
    config.save_pretrained(tmp_path)
    assert BartConfig.from_pretrained(tmp_path) == config
    assert config.pre_layer_norm and not BartConfig().pre_layer_norm


def test_save_removes_stale_quant_and_generation_configs(tmp_path):
    """A QAT save then an fp32 save into one folder: the fp32 model used to reload quantized."""
    from minidq.quant import quantize

    config = BartConfig(vocab_size=40, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32)
    qat = quantize(Bart(config), "2-2-8")
    qat.generation_config = {"num_beams": 4}
    qat.save_pretrained(tmp_path)
    assert Bart.from_pretrained(tmp_path).quant_config is not None
    Bart(config).save_pretrained(tmp_path)
    reloaded = Bart.from_pretrained(tmp_path)
    assert reloaded.quant_config is None and reloaded.generation_config.get("num_beams") is None
    assert not (tmp_path / "quant_config.json").exists() and not (tmp_path / "generation_config.json").exists()


def test_model_state_is_declared():
    """quant_config and generation_config exist on every Bart (no getattr fallbacks needed)."""
    model = Bart(BartConfig(vocab_size=40, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32))
    assert model.quant_config is None and model.generation_config == {}


def test_config_value_of_the_wrong_type(hf_checkpoint):
    """"d_model": "abc" used to end in a TypeError traceback deep inside torch."""
    directory, _ = hf_checkpoint("bart")
    config = json.loads((directory / "config.json").read_text())
    for key, value, message in (("d_model", "abc", "d_model: 'abc' is not an integer"),
                                ("encoder_attention_heads", 0, "encoder_attention_heads: 0 must be at least 1"),
                                ("dropout", "0.1", "dropout: '0.1' is not a number"),
                                ("scale_embedding", 1, "scale_embedding: 1 is not true or false")):
        (directory / "config.json").write_text(json.dumps({**config, key: value}))
        with pytest.raises(ConfigError, match=message):
            Bart.from_pretrained(directory)
    (directory / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        Bart.from_pretrained(directory)


def test_atomic_write_mode_and_stale_files(tmp_path):
    """Files written atomically used to come out 0600 (mkstemp's mode), unlike every other file."""
    import os
    from minidq.atomic import atomic_write, remove_stale

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.txt", lambda f: open(f, "w").write("x"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    (tmp_path / ".a.txt.0123abcd.tmp").write_text("half")
    (tmp_path / ".b.txt.0123abcd.tmp").write_text("another file's")
    assert [p.name for p in remove_stale(tmp_path / "a.txt")] == [".a.txt.0123abcd.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.txt.0123abcd.tmp", "a.txt"]


@pytest.mark.parametrize("task", ["summarization", "qa", "translation"])
def test_shipped_teachers_load_in_transformers_with_equal_logits(task):
    """Each task's teacher is a real HF checkpoint: transformers computes the same logits."""
    transformers = pytest.importorskip("transformers")
    from minidq import Tokenizer
    from minidq.data import load_split

    folder = Path(__file__).resolve().parent.parent / "data_samples" / task / "teacher"
    ours = Bart.from_pretrained(folder).eval()
    cls = transformers.MBartForConditionalGeneration if ours.config.pre_layer_norm else \
        transformers.BartForConditionalGeneration
    theirs = cls.from_pretrained(folder, attn_implementation="eager").eval()
    assert folder.joinpath("model.safetensors").stat().st_size <= 15 * 2**20
    tok = Tokenizer.from_pretrained(folder)
    examples = load_split(folder.parent, "test")[:4]
    batch = tok([ex.source for ex in examples])
    labels = tok([ex.target for ex in examples])["input_ids"] if not tok.tgt_lang else \
        torch.nn.utils.rnn.pad_sequence([torch.tensor(tok.encode_target(ex.target)) for ex in examples],
                                        batch_first=True, padding_value=tok.pad_token_id)
    decoder_input_ids = ours.shift_right(labels.masked_fill(labels == tok.pad_token_id, -100))
    with torch.no_grad():
        a = ours(batch["input_ids"], batch["attention_mask"], decoder_input_ids=decoder_input_ids).logits
        b = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   decoder_input_ids=decoder_input_ids).logits
    assert (a - b).abs().max().item() < 1e-4
