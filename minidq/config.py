"""Model configuration: one dataclass that reads and writes Hugging Face's `config.json`.

BART and mBART share one architecture; mBART differs only in where the LayerNorms sit
(pre-LN plus a final LayerNorm after each stack) and in how the decoder input is shifted.
So one `BartConfig` covers both, with `model_type` telling them apart.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import MinidqError

MODEL_TYPES = ("bart", "mbart")
ACTIVATIONS = ("gelu", "gelu_new", "relu", "silu", "swish", "tanh")
# Keys without a safe default: a config.json lacking one of them is not a BART config.
REQUIRED_KEYS = (
    "vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
    "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim", "max_position_embeddings",
)


MAX_SIZE = 2**24  # no size or depth of a real BART comes near it (bart-large: d_model 1024, vocab 50265)
TOKEN_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "forced_bos_token_id",
             "forced_eos_token_id")


class ConfigError(MinidqError, ValueError):
    """A config.json that minidq cannot (or will not) interpret."""


@dataclass
class BartConfig:
    model_type: str = "bart"             # "bart" (post-LN) or "mbart" (pre-LN + final LayerNorms)
    vocab_size: int = 50265
    d_model: int = 768                   # hidden size
    encoder_layers: int = 6
    decoder_layers: int = 6
    encoder_attention_heads: int = 12
    decoder_attention_heads: int = 12
    encoder_ffn_dim: int = 3072          # fc1 output size
    decoder_ffn_dim: int = 3072
    max_position_embeddings: int = 1024  # the position table has 2 more rows (BART's offset)
    activation_function: str = "gelu"
    scale_embedding: bool = False        # multiply token embeddings by sqrt(d_model)
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    init_std: float = 0.02
    pad_token_id: int = 1
    bos_token_id: int = 0
    eos_token_id: int = 2
    decoder_start_token_id: int | None = 2  # null in mBART configs: its decoder starts from the language code
    forced_bos_token_id: int | None = None  # mBART: the target-language code
    forced_eos_token_id: int | None = 2
    tokenizer_sha256: str | None = None     # minidq: Tokenizer.fingerprint() of the tokenizer it was trained with
    # minidq: heads removed by Bart.prune_heads, by attention module ("decoder.layers.0.encoder_attn":
    # [1, 3]; indices among the layer's original heads). Not HF's `pruned_heads`, whose keys are
    # layer numbers of a one-stack model: BART has three attentions per decoder layer.
    pruned_attention_heads: dict[str, list[int]] = field(default_factory=dict)

    @property
    def pre_layer_norm(self) -> bool:
        """mBART normalises before each sub-layer and adds a LayerNorm after each stack."""
        return self.model_type == "mbart"

    def __post_init__(self) -> None:
        check_types(self)
        for key in REQUIRED_KEYS:  # sizes and depths: a 0 would only fail later, deep inside torch
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: {getattr(self, key)} must be at least 1")
        for key in REQUIRED_KEYS:  # a typo'd 1e12 fails here, not as a 16-petabyte allocation
            if getattr(self, key) > MAX_SIZE:
                raise ConfigError(f"{key}: {getattr(self, key)} is beyond any BART (at most {MAX_SIZE:,})")
        for key in ("dropout", "attention_dropout", "activation_dropout"):
            if not 0 <= getattr(self, key) < 1:  # also refuses NaN
                raise ConfigError(f"{key}: {getattr(self, key)!r} must be a probability in [0, 1)")
        if not 0 <= self.init_std < math.inf:
            raise ConfigError(f"init_std: {self.init_std!r} must be a number >= 0")
        for key in TOKEN_IDS:
            value = getattr(self, key)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ConfigError(f"{key}: {value} is not a token id (0..{self.vocab_size - 1} for vocab_size "
                                  f"{self.vocab_size})")
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(f"model_type: {self.model_type!r} is not supported (only {MODEL_TYPES})")
        if self.activation_function not in ACTIVATIONS:
            raise ConfigError(f"activation_function: {self.activation_function!r} is not one of {ACTIVATIONS}")
        for key in ("encoder_attention_heads", "decoder_attention_heads"):
            if self.d_model % getattr(self, key):
                raise ConfigError(f"{key}: d_model={self.d_model} is not divisible by {getattr(self, key)}")
        for path, heads in self.pruned_attention_heads.items():
            check_pruned(self, path, heads)

    def attention_heads(self, path: str) -> int:
        """How many heads the attention module at `path` ("encoder.layers.0.self_attn") had before pruning."""
        return self.encoder_attention_heads if path.startswith("encoder.") else self.decoder_attention_heads

    def attention_paths(self) -> list[str]:
        """Every attention module, by its path in the model: encoder self-, decoder self-, cross-."""
        return ([f"encoder.layers.{i}.self_attn" for i in range(self.encoder_layers)]
                + [f"decoder.layers.{i}.{kind}" for kind in ("self_attn", "encoder_attn")
                   for i in range(self.decoder_layers)])

    def kept_heads(self, path: str) -> list[int]:
        """The original indices of the heads the attention module at `path` still has."""
        return kept_heads(self.attention_heads(path), self.pruned_attention_heads.get(path, ()))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BartConfig":
        """Build from an HF config dict; keys minidq has no use for (id2label, ...) are ignored."""
        if not isinstance(d, dict):
            raise ConfigError(f"expected a JSON object, got {type(d).__name__}")
        if "model_type" not in d:
            raise ConfigError("model_type: missing (expected 'bart' or 'mbart')")
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            raise ConfigError(f"missing required key(s): {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """The HF config dict: what `transformers` needs to rebuild the same model."""
        arch = "MBartForConditionalGeneration" if self.pre_layer_norm else "BartForConditionalGeneration"
        d = asdict(self)
        if not d["pruned_attention_heads"]:  # an unpruned model's config.json is the one HF writes
            del d["pruned_attention_heads"]
        return {"architectures": [arch], **d, "is_encoder_decoder": True, "tie_word_embeddings": True}

    @classmethod
    def from_pretrained(cls, path: str | Path, defaults: dict[str, Any] | None = None) -> "BartConfig":
        """Read `config.json` from a checkpoint directory (or the file itself).

        `defaults` fill keys the file lacks (e.g. vocab_size from the tokenizer it will be used with)."""
        path = Path(path)
        file = path / "config.json" if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no config.json found")
        try:
            d = json.loads(file.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{file}: not valid JSON ({e})") from None
        try:
            return cls.from_dict({**(defaults or {}), **d} if isinstance(d, dict) else d)
        except ConfigError as e:
            raise ConfigError(f"{file}: {e}") from None

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(self.to_dict(), indent=2) + "\n")


# What each field annotation accepts, and how to say so (annotations are strings here, thanks
# to `from __future__ import annotations`). bool is a subclass of int, so it is refused explicitly.
FIELD_TYPES = {
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "str": ((str,), "a string"),
    "bool": ((bool,), "true or false"),
    "int | None": ((int, type(None)), "an integer or null"),
    "str | None": ((str, type(None)), "a string or null"),
    "dict[str, list[int]]": ((dict,), "an object of lists of head indices"),
}
ATTENTION_PATH = re.compile(r"(encoder)\.layers\.(\d+)\.self_attn|(decoder)\.layers\.(\d+)\.(self_attn|encoder_attn)")


def kept_heads(heads: int, pruned: Iterable[int]) -> list[int]:
    """Of a module's `heads` heads, the indices not in `pruned`."""
    pruned = set(pruned)
    return [h for h in range(heads) if h not in pruned]


def check_pruned(config: BartConfig, path: str, heads: Any) -> None:
    """One entry of pruned_attention_heads: an attention module of this shape, and distinct head
    indices that leave it at least one head."""
    match = ATTENTION_PATH.fullmatch(path)
    side, layer = (match[1] or match[3], int(match[2] or match[4])) if match else (None, 0)
    if side is None or layer >= getattr(config, f"{side}_layers"):
        raise ConfigError(f"pruned_attention_heads: {path!r} is not an attention module of this model "
                          f"(e.g. 'encoder.layers.0.self_attn', 'decoder.layers.0.encoder_attn')")
    total = config.attention_heads(path)
    if not (isinstance(heads, list) and all(type(h) is int and 0 <= h < total for h in heads)
            and len(set(heads)) == len(heads)):
        raise ConfigError(f"pruned_attention_heads[{path!r}]: {heads!r} is not a list of distinct head indices "
                          f"in 0..{total - 1}")
    if len(heads) >= total:
        raise ConfigError(f"pruned_attention_heads[{path!r}]: prunes all {total} heads; keep at least one")


def check_types(config: Any) -> None:
    """Raise ConfigError naming the first field whose value has the wrong type ("d_model": "abc")."""
    for f in fields(config):
        value = getattr(config, f.name)
        allowed, description = FIELD_TYPES[f.type]
        if not isinstance(value, allowed) or (isinstance(value, bool) and f.type != "bool"):
            raise ConfigError(f"{f.name}: {value!r} is not {description}")
