"""Shared fixtures: tiny random BART / mBART checkpoints written by transformers itself.

transformers is a test-only oracle: every parity test builds a reference model with it,
saves it in a temp dir, and checks that minidq reads and computes exactly the same thing.
"""

import sys
from pathlib import Path

import pytest
import torch

# the lessons' checks and solutions import as top-level packages (`checks`, `solutions`), as the
# notebooks, which run from lessons/, import them
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lessons"))

TINY = dict(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4,
            decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=41, max_position_embeddings=64,
            dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)


def make_hf_model(kind: str = "bart", seed: int = 0, **overrides):
    """A random transformers model whose LayerNorms and logits bias are non-trivial too."""
    import transformers

    config_cls, model_cls = {
        "bart": (transformers.BartConfig, transformers.BartForConditionalGeneration),
        "mbart": (transformers.MBartConfig, transformers.MBartForConditionalGeneration),
    }[kind]
    torch.manual_seed(seed)
    config = config_cls(**{**TINY, **overrides}, attn_implementation="eager")
    model = model_cls(config).eval()
    with torch.no_grad():
        model.final_logits_bias.normal_()
        for name, p in model.named_parameters():
            if "norm" in name:  # LayerNorm weights start at 1 and biases at 0: perturb them
                p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.fixture
def hf_checkpoint(tmp_path):
    """Factory: save a tiny transformers model to a temp dir; returns (dir, model)."""
    def make(kind: str = "bart", **overrides):
        model = make_hf_model(kind, **overrides)
        directory = tmp_path / f"{kind}-{len(list(tmp_path.iterdir()))}"
        model.save_pretrained(directory)
        return directory, model
    return make


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: on a busy machine, threads that wait for each other make small models
    many times slower (measured on the CLI tests: 7 s with one thread, 40-60 s with two).
    A module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
