"""Property-based tests: whatever bytes a user's file holds, minidq answers with one of its own
error types (a clear one-line message in the CLI), never with another exception.

The readers under test: the JSONL reader, the config reader, the W-E-A parser and load_packed.
Examples are random bytes, and near-misses of valid input (JSON of the right shape with wrong
values, a valid packed file with bytes flipped or cut), which reach deeper into each reader.
"""

import json
import struct

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from minidq import Bart, BartConfig, QuantConfig
from minidq.config import REQUIRED_KEYS, ConfigError
from minidq.data import read_jsonl
from minidq.errors import MinidqError
from minidq.export import load_packed, save_packed
from minidq.quant import quantize

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("properties")


# ---- the JSONL reader

record = st.fixed_dictionaries({}, optional={"source": json_values | st.text(), "target": json_values | st.text()})
jsonl_line = (st.binary(max_size=40)
              | json_values.map(lambda v: json.dumps(v).encode())
              | record.map(lambda r: json.dumps(r, ensure_ascii=False).encode()))


@FAST
@given(st.binary(max_size=200) | st.lists(jsonl_line, max_size=6).map(b"\n".join))
@example(b"[" * 100_000)  # nested deeper than json's recursion limit
@example(b"\xef\xbb\xbf" + b'{"source": "a", "target": "b"}')  # a UTF-8 byte-order mark
def test_jsonl_reader(scratch, data):
    path = scratch / "split.jsonl"
    path.write_bytes(data)
    try:
        examples = read_jsonl(path)
    except MinidqError:
        return
    assert examples and all(isinstance(e.source, str) and e.source.strip() for e in examples)


# ---- the config reader

config_dict = st.dictionaries(
    st.sampled_from(["model_type", "vocab_size", "d_model", "encoder_layers", "decoder_layers",
                     "encoder_attention_heads", "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim",
                     "max_position_embeddings", "activation_function", "scale_embedding", "dropout",
                     "attention_dropout", "init_std", "pad_token_id", "eos_token_id", "decoder_start_token_id",
                     "forced_bos_token_id", "id2label"]),
    json_values | st.sampled_from(["bart", "mbart", "gelu"]) | st.integers(0, 64), max_size=16)


@FAST
@given(st.binary(max_size=200) | json_values.map(json.dumps).map(str.encode)
       | config_dict.map(json.dumps).map(str.encode))
@example(b'{"model_type": "bart", "vocab_size": 10, "d_model": "abc", "encoder_layers": 1, "decoder_layers": 1, '
         b'"encoder_attention_heads": 1, "decoder_attention_heads": 1, "encoder_ffn_dim": 1, "decoder_ffn_dim": 1, '
         b'"max_position_embeddings": 1}')
def test_config_reader(scratch, data):
    (scratch / "config.json").write_bytes(data)
    try:
        config = BartConfig.from_pretrained(scratch)
    except MinidqError:
        return
    assert config.d_model % config.encoder_attention_heads == 0
    if max(getattr(config, k) for k in REQUIRED_KEYS) <= 64:  # a config that reads, builds and runs
        model = Bart(config).eval()
        ids = torch.tensor([[config.bos_token_id, config.eos_token_id]])
        assert model(ids, decoder_input_ids=ids).logits.shape == (1, 2, config.vocab_size)


# ---- the W-E-A parser

@FAST
@given(st.text(max_size=20) | st.text(alphabet="0123456789- ²٣.+", max_size=12))
@example("²-2-8")  # str.isdigit() passes "²", int() refuses it
def test_w_e_a_parser(text):
    try:
        config = QuantConfig.parse(text)
    except ConfigError:
        return
    assert str(config).count("-") == 2


# ---- load_packed

@pytest.fixture(scope="module")
def packed(scratch) -> bytes:
    torch.manual_seed(0)
    model = quantize(Bart(BartConfig(vocab_size=40, d_model=8, encoder_layers=1, decoder_layers=1,
                                     encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=8,
                                     decoder_ffn_dim=8, max_position_embeddings=8)), "2-2-8")
    save_packed(model, scratch / "good.packed")
    return (scratch / "good.packed").read_bytes()


def safetensors_file(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


header_dict = st.dictionaries(st.text(max_size=8) | st.just("__metadata__"), json_values, max_size=4)


@FAST
@given(st.binary(max_size=120)
       | st.tuples(header_dict, st.binary(max_size=16)).map(lambda hb: safetensors_file(*hb))
       | st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.integers(-1, 2)))
def test_load_packed(scratch, packed, data):
    if isinstance(data, tuple):  # a valid file with one byte changed (0, 1), cut (-1) or one inserted (2)
        position, value, how = data
        position %= len(packed)
        before, after = packed[:position], packed[position + 1:]
        data = {-1: before, 0: before + bytes([value]) + after,
                1: before + bytes([packed[position] ^ (value | 1)]) + after,
                2: before + bytes([value]) + packed[position:]}[how]
    path = scratch / "damaged.packed"
    path.write_bytes(data)
    try:
        load_packed(path)
    except MinidqError:
        return
    assert data == packed  # only the undamaged file loads
