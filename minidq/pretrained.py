"""Hugging Face checkpoint directories <-> minidq `Bart`, both ways.

A quantization-aware-trained model is saved the same way (its latent full-precision weights)
plus `quant_config.json`, which `load_pretrained` applies again; transformers ignores that file.
Real low-bit storage is minidq.export's job.

An HF directory holds `config.json` and the weights as `model.safetensors` or
`pytorch_model.bin` (optionally sharded with an `*.index.json`). Our module names are HF's
minus the `model.` prefix of `BartForConditionalGeneration`, so loading is a key-for-key
copy, with one quirk: the token embedding appears under up to four names (`shared`,
`encoder.embed_tokens`, `decoder.embed_tokens`, `lm_head`) that are one tied tensor.

Loading never executes pickled code: safetensors, or `torch.load(weights_only=True)`.
Every missing, unexpected or mis-shaped tensor is named in the error.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .atomic import save_safetensors
from .config import BartConfig
from .errors import MinidqError
from .quant import QuantConfig, quantize

if TYPE_CHECKING:  # model.py calls this module (Bart.from_pretrained, save_pretrained)
    from .model import Bart

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# The names under which HF checkpoints may carry the one tied embedding matrix.
TIED_NAMES = ("model.shared.weight", "model.encoder.embed_tokens.weight",
              "model.decoder.embed_tokens.weight", "lm_head.weight")


class CheckpointError(MinidqError, ValueError):
    """A checkpoint whose tensors do not fit the model its config describes."""


def _read_one(file: Path) -> dict[str, torch.Tensor]:
    try:
        if file.suffix == ".safetensors":
            state = load_file(file)
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"{file}: cannot read weights (it holds more than tensors; "
                              "refusing to unpickle arbitrary objects)") from None
    except (SafetensorError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{file}: cannot read weights ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{file}: cannot read weights (not a dict of tensors)")
    return state


def read_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    """The raw HF state dict of a checkpoint directory (single file or shards)."""
    for name in WEIGHT_FILES:
        index = directory / f"{name}.index.json"
        if index.is_file():  # sharded: the index maps each tensor to its shard file
            weight_map = read_json_object(index).get("weight_map")
            if not (isinstance(weight_map, dict) and weight_map
                    and all(isinstance(v, str) for v in weight_map.values())):
                raise CheckpointError(f"{index}: no \"weight_map\" object from tensor names to shard files")
            shards = sorted(set(weight_map.values()))
            return {k: v for shard in shards for k, v in _read_one(directory / shard).items()}
        if (directory / name).is_file():
            return _read_one(directory / name)
    raise FileNotFoundError(f"{directory}: no weights found (looked for {', '.join(WEIGHT_FILES)})")


def hf_to_minidq(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename HF keys to ours; fold the tied-embedding aliases into `shared.weight`."""
    prefixed = any(k.startswith("model.") for k in hf)
    hf = dict(hf) if prefixed else {"model." + k: v for k, v in hf.items()}  # a bare BartModel save
    tied = [hf.pop(k) for k in TIED_NAMES if k in hf]
    out = {k.removeprefix("model."): v for k, v in hf.items()}
    if tied:
        out["shared.weight"] = tied[0]
    return out


def load_pretrained(cls: type[Bart], path: str | Path) -> Bart:
    """Build a `Bart` from an HF checkpoint directory, checking every tensor."""
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory")
    config = BartConfig.from_pretrained(directory)
    model = cls(config, read_generation_config(directory))
    state = hf_to_minidq(read_state_dict(directory))
    # Old checkpoints may lack final_logits_bias; HF treats it as zeros, so do we.
    state.setdefault("final_logits_bias", torch.zeros(1, config.vocab_size))
    if (directory / "quant_config.json").is_file():  # a quantization-aware-trained checkpoint
        file = directory / "quant_config.json"
        try:
            quant_config = QuantConfig(**read_json_object(file))
        except (TypeError, ValueError) as e:  # unknown keys; bits out of range (a ConfigError)
            raise CheckpointError(f"{file}: {e}") from None
        quantize(model, quant_config)  # first: learned quantizer scales (minidq.learned) are tensors to load

    expected = {k: v for k, v in model.state_dict().items()  # the tied embedding's aliases are not saved
                if not k.startswith(("encoder.embed_tokens.", "decoder.embed_tokens."))}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
                  for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = [f"missing tensors: {', '.join(missing)}"] if missing else []
    problems += [f"unexpected tensors: {', '.join(unexpected)}"] if unexpected else []
    problems += [f"mis-shaped tensors: {'; '.join(mismatched)}"] if mismatched else []
    if problems:
        raise CheckpointError(f"{directory}: checkpoint does not match its config.json\n  " + "\n  ".join(problems))
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:  # a diverged save: it would generate nothing and score 0.00 without a word
        raise CheckpointError(f"{directory}: {len(broken)} tensor(s) hold NaN or infinite values "
                              f"({', '.join(broken[:3])}{', ...' if len(broken) > 3 else ''}); the checkpoint is broken")

    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    return model.eval()


def read_json_object(file: Path) -> dict:
    """A JSON file holding one object (a dict), or a CheckpointError naming the file."""
    try:
        d = json.loads(file.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise CheckpointError(f"{file}: expected a JSON object, got {type(d).__name__}")
    return d


def read_generation_config(directory: Path) -> dict:
    """Decoding defaults: generation_config.json, else the legacy keys inside config.json."""
    file = directory / "generation_config.json"
    if file.is_file():
        return read_json_object(file)
    legacy = ("num_beams", "max_length", "min_length", "length_penalty", "no_repeat_ngram_size",
              "early_stopping", "forced_bos_token_id", "forced_eos_token_id", "decoder_start_token_id")
    config = read_json_object(directory / "config.json")
    return {k: config[k] for k in legacy if config.get(k) is not None}


def save_pretrained(model: Bart, path: str | Path) -> None:
    """Write config.json + model.safetensors that transformers' Bart/MBartForConditionalGeneration loads,
    unless heads were pruned (config.pruned_attention_heads): transformers' BART has one head count
    per stack, so such a checkpoint loads in minidq only (its tensors' shapes say why in transformers)."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(directory)
    state = {("model." + k if k != "final_logits_bias" else k): v.detach().contiguous().clone()
             for k, v in model.state_dict().items()
             if not k.startswith(("encoder.embed_tokens.", "decoder.embed_tokens."))}  # the tied embedding's aliases
    save_safetensors(directory / "model.safetensors", state, metadata={"format": "pt"})
    # Each optional file is written or removed: one left by an earlier save into the same folder
    # (a QAT checkpoint, then an fp32 one) would otherwise be read back as this model's.
    optional = {"quant_config.json": asdict(model.quant_config) if model.quant_config is not None else None,
                "generation_config.json": model.generation_config or None}
    for name, content in optional.items():
        if content is None:
            (directory / name).unlink(missing_ok=True)
        else:  # quant_config: latent weights + how to quantize them (see minidq.quant)
            (directory / name).write_text(json.dumps(content, indent=2) + "\n")
