"""Generation: token-for-token equal to transformers' generate, with and without the KV cache."""

import json

import pytest
import torch

from minidq import Bart
from minidq.generate import repeated_ngram_tokens

transformers = pytest.importorskip("transformers")

EOS, PAD, MAX_LENGTH = 2, 1, 20
EOS_BIAS = {"bart": 4.0, "mbart": 3.0}  # random weights would (almost) never pick EOS: make it likelier
TINY = dict(vocab_size=96, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
            init_std=0.3)  # a larger init than BART's 0.02: peaked next-token distributions, no near-ties


def make_hf(kind: str):
    """A random transformers model whose sequences sometimes end with EOS and sometimes run to max_length."""
    config_cls, model_cls = {
        "bart": (transformers.BartConfig, transformers.BartForConditionalGeneration),
        "mbart": (transformers.MBartConfig, transformers.MBartForConditionalGeneration),
    }[kind]
    torch.manual_seed(0)
    model = model_cls(config_cls(**TINY, attn_implementation="eager")).eval()
    with torch.no_grad():
        model.final_logits_bias[0, EOS] = EOS_BIAS[kind]
    return model


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """kind -> (transformers model, minidq model loaded from the files transformers saved)."""
    transformers.logging.set_verbosity_error()
    out = {}
    for kind in ("bart", "mbart"):
        directory = tmp_path_factory.mktemp(kind)
        hf = make_hf(kind)
        hf.save_pretrained(directory)
        out[kind] = hf, Bart.from_pretrained(directory)
    return out


def padded_batch():
    """Five inputs of different lengths, right-padded, with their attention mask."""
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, TINY["vocab_size"], (5, 12), generator=g)
    attention_mask = torch.ones_like(input_ids)
    for row, pad in enumerate([0, 3, 5, 7, 1]):
        if pad:
            input_ids[row, -pad:] = PAD
            attention_mask[row, -pad:] = 0
    return input_ids, attention_mask


def options(**overrides):
    """Every option spelled out, so that neither side falls back on its own defaults."""
    return {**dict(num_beams=1, max_length=MAX_LENGTH, min_length=0, length_penalty=1.0, no_repeat_ngram_size=0,
                   early_stopping=False, decoder_start_token_id=EOS, forced_bos_token_id=None,
                   forced_eos_token_id=EOS), **overrides}


CASES = {
    "greedy": options(),
    "greedy-min_length": options(min_length=12),
    "greedy-ngram": options(no_repeat_ngram_size=2),
    "greedy-short": options(max_length=6),
    "greedy-max_new_tokens": options(max_new_tokens=7),
    "beam2": options(num_beams=2),
    "beam4": options(num_beams=4),
    "beam4-lp2": options(num_beams=4, length_penalty=2.0),
    "beam4-lp0.5-never": options(num_beams=4, length_penalty=0.5, early_stopping="never"),
    "beam4-lp-1": options(num_beams=4, length_penalty=-1.0),
    "beam4-early": options(num_beams=4, early_stopping=True),
    "beam2-never": options(num_beams=2, early_stopping="never"),
    "beam4-min-ngram": options(num_beams=4, min_length=10, no_repeat_ngram_size=3),
    "beam2-ngram1": options(num_beams=2, no_repeat_ngram_size=1, max_length=10),
    "beam4-short": options(num_beams=4, max_length=6),
    "greedy-forced_bos": options(forced_bos_token_id=5, decoder_start_token_id=EOS),
    "beam4-forced_bos": options(num_beams=4, forced_bos_token_id=5, length_penalty=2.0),
    "beam2-no-forced_eos": options(num_beams=2, forced_eos_token_id=None),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["bart", "mbart"])
def test_same_tokens_as_transformers(checkpoints, kind, case):
    hf, model = checkpoints[kind]
    input_ids, attention_mask = padded_batch()
    kwargs = CASES[case]
    expected = hf.generate(input_ids, attention_mask=attention_mask, do_sample=False, **kwargs)
    got = model.generate(input_ids, attention_mask, **kwargs)
    assert got.dtype == torch.long
    assert torch.equal(got, expected), f"\nHF:\n{expected}\nminidq:\n{got}"


@pytest.mark.parametrize("kind", ["bart", "mbart"])
def test_some_rows_end_with_eos_others_reach_max_length(checkpoints, kind):
    """The equality tests above are only worth something if both ways of ending occur."""
    _, model = checkpoints[kind]
    rows = []
    for num_beams in (1, 4):
        out = model.generate(*padded_batch(), **options(num_beams=num_beams, length_penalty=2.0,
                                                        forced_eos_token_id=None))
        for row in out:
            ends = (row[1:] == EOS).nonzero()
            if len(ends):  # after EOS comes padding only
                assert (row[1 + int(ends[0]) + 1:] == PAD).all()
            rows.append(len(ends) > 0)
    assert any(rows) and not all(rows)


@pytest.mark.parametrize("kind", ["bart", "mbart"])
def test_defaults_come_from_generation_config(tmp_path, kind):
    """No options given: both read generation_config.json (mBART: no decoder start -> bos, as HF does)."""
    defaults = dict(num_beams=3, max_length=15, min_length=4, length_penalty=2.0, no_repeat_ngram_size=2,
                    early_stopping=True, forced_bos_token_id=7 if kind == "mbart" else None)
    hf = make_hf(kind)
    hf.generation_config.update(**defaults)
    hf.save_pretrained(tmp_path)
    model = Bart.from_pretrained(tmp_path)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert saved["num_beams"] == 3
    input_ids, attention_mask = padded_batch()
    expected = hf.generate(input_ids, attention_mask=attention_mask)
    assert torch.equal(model.generate(input_ids, attention_mask), expected)


@pytest.mark.filterwarnings("ignore:Using the model-agnostic default")
def test_defaults_without_generation_config(checkpoints):
    """A freshly built model has no generation_config: the token ids come from model.config, 20 new tokens."""
    hf, loaded = checkpoints["bart"]
    model = Bart(loaded.config)
    model.load_state_dict(loaded.state_dict())
    model.eval()
    input_ids, attention_mask = padded_batch()
    expected = hf.generate(input_ids, attention_mask=attention_mask)
    assert expected.shape[1] == 1 + 20
    assert torch.equal(model.generate(input_ids, attention_mask), expected)


@pytest.mark.parametrize("kwargs", [options(), options(num_beams=4, no_repeat_ngram_size=2, min_length=8),
                                    options(num_beams=3, length_penalty=2.0, early_stopping="never")])
@pytest.mark.parametrize("kind", ["bart", "mbart"])
def test_cache_and_no_cache_give_the_same_tokens(checkpoints, kind, kwargs):
    _, model = checkpoints[kind]
    input_ids, attention_mask = padded_batch()
    cached = model.generate(input_ids, attention_mask, **kwargs)
    uncached = model.generate(input_ids, attention_mask, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("num_beams", [1, 4])
def test_padding_does_not_change_a_row(checkpoints, num_beams):
    """Each input decoded alone, unpadded, gives the same tokens as in the padded batch."""
    _, model = checkpoints["bart"]
    input_ids, attention_mask = padded_batch()
    batch = model.generate(input_ids, attention_mask, num_beams=num_beams)
    for row in range(len(input_ids)):
        alone = model.generate(input_ids[row:row + 1, attention_mask[row].bool()], num_beams=num_beams)[0]
        assert torch.equal(batch[row, :len(alone)], alone)
        assert (batch[row, len(alone):] == PAD).all()


def test_repeated_ngram_tokens():
    sequences = torch.tensor([[5, 6, 7, 5, 6]])
    assert repeated_ngram_tokens(sequences, 3, 10)[0].nonzero().flatten().tolist() == [7]  # "5 6" was followed by 7
    assert repeated_ngram_tokens(sequences, 2, 10)[0].nonzero().flatten().tolist() == [7]  # "6" was followed by 7
    assert repeated_ngram_tokens(sequences, 1, 10)[0].nonzero().flatten().tolist() == [5, 6, 7]  # every seen token


@pytest.mark.parametrize("kwargs,message", [
    (dict(num_beams=0), "num_beams"),
    (dict(max_length=5, min_length=5), "greater than min_length"),
    (dict(max_length=1), "max_length"),
    (dict(max_length=1000), "max_position_embeddings"),
    (dict(early_stopping="sometimes"), "early_stopping"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size"),
])
def test_bad_arguments_raise_clear_errors(checkpoints, kwargs, message):
    _, model = checkpoints["bart"]
    with pytest.raises(ValueError, match=message):
        model.generate(torch.tensor([[5, 6, 7, EOS]]), **kwargs)


@pytest.mark.parametrize("input_ids", [torch.zeros(1, 0, dtype=torch.long), torch.zeros(0, 4, dtype=torch.long),
                                       torch.tensor([5, 6, 7])])
def test_empty_or_unbatched_input_raises(checkpoints, input_ids):
    _, model = checkpoints["bart"]
    with pytest.raises(ValueError, match="input_ids"):
        model.generate(input_ids)


def test_mask_shape_and_unknown_option_raise(checkpoints):
    _, model = checkpoints["bart"]
    with pytest.raises(ValueError, match="attention_mask"):
        model.generate(torch.tensor([[5, 6, 7]]), torch.ones(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="num_beam"):
        model.generate(torch.tensor([[5, 6, 7]]), num_beam=4)
