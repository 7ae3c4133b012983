"""The packed file: one safetensors file (no pickle anywhere) holding a quantized student's codes.

Layout, named `*.packed` by convention:
    <name>.codes    uint8          a quantized weight's packed codes (minidq.deploy.packing)
    <name>.scale    float32        its scale(s), one or one per row, exactly as the forward computed them
    <name>.offset   float32        the grid's minimum (asymmetric quantizers only)
    <name>          fp16 or fp32   each tensor that is not quantized: LayerNorms, biases,
                                   final_logits_bias, positions (or int8 codes: `int8_positions`);
                                   learned activation scales and offsets (minidq.learned) always fp32
    tokenizer.json  uint8          the tokenizer file (optional; accounted apart from the model)
and str->str metadata: format and version, the BartConfig, the QuantConfig, the decoding
defaults, one spec per packed tensor (shape, scheme, bits, per_row, packing; a float's dtype and
shape are in safetensors' own index), and a sha256 over all of it, so a truncated or tampered
file is an error, never a silently different model.

Loading gives one of two models. backend="integer" (the default): linears and the LM head hold
int8 codes and compute int8 x int8 -> int32 (minidq.deploy.intinfer): small in memory, fast. backend=
"fake": the frozen fake-quantized model (minidq.deploy.freeze), each weight rebuilt by `dequantize`,
the very expression the quantizer's forward evaluates, so its weights are bit-identical to the
exported ones. Unquantized tensors are fp16 by default (outputs then move by the tolerance
measured in tests/test_export.py) or fp32 (outputs identical).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from tokenizers import Tokenizer as TokenizerBackend

from ..atomic import save_safetensors
from ..config import BartConfig, ConfigError
from ..errors import MinidqError
from ..fakequant import CODES, Quantizer, dequantize
from ..learned import learned_parameters
from ..model import Bart
from ..quant import ALLOWED_BITS, QuantConfig, quantize
from ..tokenizer import Tokenizer
from .freeze import FrozenQuantizer, stored_tensors, weight_quantizers
from .intinfer import integer_module, replace
from .packing import levels, pack_codes, unpack_codes

FORMAT, VERSION = "minidq-packed", "1"
FLOAT_DTYPES = {"fp16": torch.float16, "fp32": torch.float32}
SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "U8": torch.uint8}  # what packed files hold
SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1}
TOKENIZER = "tokenizer.json"
BACKENDS = ("integer", "fake")


class PackedFileError(MinidqError, ValueError):
    """A packed file that is truncated, tampered with, or not one at all."""


def layout(name: str, spec: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The file tensors (safetensors dtype, shape) that a quantized tensor's spec takes: what
    the loader checks and what the footprint counts."""
    shape = tuple(spec["shape"])
    n = math.prod(shape)
    nbytes = -(-n // 5) if spec["packing"] == "trits" else -(-n * spec["bits"] // 8)
    scale_shape = shape[:-1] + (1,) if spec["per_row"] else ()  # one per row (minidq.quant.reduce)
    out = {f"{name}.codes": ("U8", (nbytes,)), f"{name}.scale": ("F32", scale_shape)}
    if spec["scheme"] == "asymmetric":
        out[f"{name}.offset"] = ("F32", scale_shape)
    return out


def checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """sha256 over the metadata (but this checksum) and every tensor's name, dtype, shape, bytes."""
    h = hashlib.sha256(json.dumps({k: v for k, v in metadata.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy())
    return h.hexdigest()


@torch.no_grad()
def save_packed(model: Bart, path: str | Path, tokenizer: Tokenizer | None = None, packing: str = "bits",
                float_dtype: str = "fp16", int8_positions: bool = False) -> None:
    """Write `model` as one packed safetensors file (see the module docstring).

    packing: "bits" (b bits per code) or "trits" (3-level codes five per byte).
    float_dtype: "fp16" or "fp32" for the tensors that are not quantized.
    int8_positions: store the position tables as 8-bit codes with a scale per row (lossy)."""
    if packing not in ("bits", "trits"):
        raise ConfigError(f"packing: {packing!r} is not 'bits' or 'trits'")
    if float_dtype not in FLOAT_DTYPES:
        raise ConfigError(f"float_dtype: {float_dtype!r} is not one of {tuple(FLOAT_DTYPES)}")
    quantizers, learned = weight_quantizers(model), learned_parameters(model)
    tensors: dict[str, torch.Tensor] = {}
    specs: dict[str, dict] = {}
    for name, value in stored_tensors(model).items():
        value = value.detach().cpu()
        q = quantizers.get(name)
        if q is None and int8_positions and "embed_positions" in name:
            q = Quantizer("symmetric", 8, per_row=True)
        if q is None:  # its index entry says dtype and shape; learned activation scales stay fp32 (exact)
            tensors[name] = value.to(torch.float32 if name in learned else FLOAT_DTYPES[float_dtype]).contiguous()
            continue
        if value.dtype != torch.float32:
            raise ConfigError(f"{name}: packing needs a float32 model (scales are stored float32), got {value.dtype}")
        codes, scale, *offset = (t.cpu() for t in q.codes(value))
        data, used = pack_codes(codes, q.scheme, q.bits, packing)
        specs[name] = {"shape": list(value.shape), "scheme": q.scheme, "bits": q.bits, "per_row": q.per_row,
                       "packing": used}
        tensors[f"{name}.codes"] = data
        tensors[f"{name}.scale"] = scale.contiguous()
        if offset:
            tensors[f"{name}.offset"] = offset[0].contiguous()
    if tokenizer is not None:
        tensors[TOKENIZER] = torch.frombuffer(bytearray(tokenizer_json(tokenizer)), dtype=torch.uint8)
    quant_config = model.quant_config
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(model.config.to_dict()),
        "quant_config": json.dumps(asdict(quant_config) if quant_config is not None else None),
        "generation_config": json.dumps(model.generation_config),
        "tensors": json.dumps(specs, separators=(",", ":")),
    }
    metadata["sha256"] = checksum(tensors, metadata)
    save_safetensors(path, tensors, metadata)


def tokenizer_json(tokenizer: Tokenizer) -> bytes:
    """The bytes of the tokenizer.json that Tokenizer.save_pretrained writes."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return (Path(tmp) / TOKENIZER).read_bytes()


def read_header(path: str | Path) -> dict:
    """The safetensors header (8-byte little-endian length, then JSON), checking the file's size."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else None
        if n is None or 8 + n > size:
            raise PackedFileError(f"{path}: truncated or not a safetensors file ({size} bytes; "
                                  f"the header alone needs {8 if n is None else 8 + n})")
        try:
            header = json.loads(f.read(n))
            if not isinstance(header.get("__metadata__", {}), dict):
                raise TypeError("__metadata__ is not a JSON object")
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError, IndexError) as e:
            raise PackedFileError(f"{path}: corrupt header ({type(e).__name__}: {e})") from None
    if 8 + n + end != size:
        raise PackedFileError(f"{path}: truncated or padded: its tensors end at byte {8 + n + end}, "
                              f"the file has {size}")
    return header


def read_packed(path: str | Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata, tensors) of a packed file, after checking its size, format, version and checksum."""
    path = Path(path)
    metadata = read_header(path).get("__metadata__", {})
    if metadata.get("format") != FORMAT:
        raise PackedFileError(f"{path}: not a minidq packed file (its metadata has no format '{FORMAT}'; "
                              "for a Hugging Face checkpoint pass its folder)")
    if metadata.get("version") != VERSION:
        raise PackedFileError(f"{path}: packed format version {metadata.get('version')!r} is unknown "
                              f"(this minidq reads version {VERSION})")
    missing = [k for k in ("config", "quant_config", "generation_config", "tensors", "sha256") if k not in metadata]
    if missing:
        raise PackedFileError(f"{path}: metadata lacks {', '.join(missing)}")
    try:
        tensors = load_file(path)
    except SafetensorError as e:
        raise PackedFileError(f"{path}: cannot read tensors ({e})") from None
    if checksum(tensors, metadata) != metadata.get("sha256"):
        raise PackedFileError(f"{path}: checksum mismatch: the file was modified or damaged after export")
    parsed = {}
    for key in ("config", "quant_config", "generation_config", "tensors"):  # a checksum is no signature:
        try:                                                                   # a crafted file passes it
            parsed[key] = json.loads(metadata[key])
        except json.JSONDecodeError as e:
            raise PackedFileError(f"{path}: metadata {key!r} is not valid JSON ({e.msg} at column {e.colno})") from None
    problems = check_specs(parsed["tensors"])
    try:
        BartConfig.from_dict(parsed["config"])
    except ConfigError as e:
        problems.append(f"config: {e}")
    try:
        if parsed["quant_config"] is not None:
            QuantConfig(**parsed["quant_config"])
    except (ConfigError, TypeError) as e:  # TypeError: not an object, or an unknown or missing field
        problems.append(f"quant_config: {e}")
    if not isinstance(parsed["generation_config"], dict):
        problems.append("generation_config: not a JSON object")
    if problems:
        raise PackedFileError(f"{path}: bad metadata: " + listed(problems))
    return metadata, tensors


SPEC_TYPES = {"shape": list, "scheme": str, "bits": int, "per_row": bool, "packing": str}


def check_specs(specs: object) -> list[str]:
    """What is wrong with the `tensors` metadata: each entry's keys, scheme, bits, packing, shape."""
    if not isinstance(specs, dict):
        return ["tensors: not a JSON object"]
    problems = []
    for name, spec in specs.items():
        if not isinstance(spec, dict):
            problems.append(f"{name}: its spec is not a JSON object")
            continue
        wrong = [k for k, kind in SPEC_TYPES.items() if not isinstance(spec.get(k), kind)
                 or (kind is int and isinstance(spec.get(k), bool))]
        if wrong:
            problems.append(f"{name}: spec without a valid {', '.join(wrong)}")
        elif spec["scheme"] not in CODES:
            problems.append(f"{name}: scheme {spec['scheme']!r} is not one of {', '.join(CODES)}")
        elif spec["bits"] not in ALLOWED_BITS[:-1]:
            problems.append(f"{name}: bits {spec['bits']} is not 1..8")
        elif spec["packing"] not in ("bits", "trits") or (spec["packing"] == "trits"
                                                         and levels(spec["scheme"], spec["bits"]) != 3):
            problems.append(f"{name}: packing {spec['packing']!r} is not 'bits' (or 'trits' for 3-level codes)")
        elif not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in spec["shape"]):
            problems.append(f"{name}: shape {spec['shape']} is not a list of positive integers")
    return problems


def listed(problems: list[str], first: int = 5) -> str:
    """The first few problems, and how many more: a damaged file can have hundreds."""
    more = f"; and {len(problems) - first} more" if len(problems) > first else ""
    return "; ".join(problems[:first]) + more


def check_tensors(tensors: dict[str, torch.Tensor], specs: dict[str, dict],
                  targets: dict[str, torch.Tensor]) -> list[str]:
    """What is wrong with a file's tensors, given its specs and the model's tensors (targets)."""
    expected: dict[str, tuple[tuple[torch.dtype, ...], tuple[int, ...]]] = {}  # name -> (allowed dtypes, shape)
    for name, target in targets.items():
        if name in specs:
            expected.update({k: ((SAFETENSORS_DTYPES[d],), s) for k, (d, s) in layout(name, specs[name]).items()})
        else:
            expected[name] = (tuple(FLOAT_DTYPES.values()), tuple(target.shape))
    problems = [f"{k}: specified, but the model has no such tensor" for k in specs if k not in targets]
    problems += [f"unexpected tensor {k}" for k in sorted(set(tensors) - set(expected) - {TOKENIZER})]
    for k, (dtypes, shape) in expected.items():
        t = tensors.get(k)
        if t is None:
            problems.append(f"missing tensor {k}")
        elif t.dtype not in dtypes or tuple(t.shape) != shape:
            problems.append(f"{k}: {t.dtype} {tuple(t.shape)}, expected {' or '.join(map(str, dtypes))} {shape}")
    return problems


@torch.no_grad()
def load_packed(path: str | Path, backend: str = "integer") -> Bart:
    """The quantized Bart a packed file holds, for inference (see the module docstring).

    The model is first built on the meta device (no memory), so that only what the backend
    keeps is ever allocated: int8 codes for the integer backend, not fp32 copies of them."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend: {backend!r} is not one of {BACKENDS}")
    metadata, tensors = read_packed(path)
    specs = json.loads(metadata["tensors"])
    with torch.device("meta"):  # read_packed has checked both configs
        model = Bart(BartConfig.from_dict(json.loads(metadata["config"])), json.loads(metadata["generation_config"]))
    quant_config = json.loads(metadata["quant_config"])
    if quant_config is not None:
        quantize(model, QuantConfig(**quant_config))  # rebuilds the activation quantizers

    targets, quantizers = stored_tensors(model), weight_quantizers(model)
    problems = check_tensors(tensors, specs, targets)
    problems += [f"{k}: stored unquantized, but its quant_config quantizes it" for k in quantizers if k not in specs]
    if problems:
        raise PackedFileError(f"{path}: tensors do not match its config: " + listed(problems))
    floats, quantized = {}, {}
    for name in targets:
        if name not in specs:
            floats[name] = tensors[name].float()
            continue
        spec = specs[name]
        stored = (unpack_codes(tensors[f"{name}.codes"], spec), tensors[f"{name}.scale"])
        stored += (tensors[f"{name}.offset"],) if spec["scheme"] == "asymmetric" else ()
        if name not in quantizers:  # int8 positions: plain floats again
            floats[name] = dequantize(*stored)
        else:
            quantized[name] = spec, stored
    # The floats take their places in the meta model first: an integer linear may pack its bias
    # with its weight codes (integer modules keep their float biases' names).
    unexpected = model.load_state_dict(floats, strict=False, assign=True).unexpected_keys
    for name, (spec, stored) in quantized.items():
        module_name = name.removesuffix(".weight")
        module = model.get_submodule(module_name)
        fast = integer_module(module, *stored[:2]) if backend == "integer" else None
        if fast is not None:
            replace(model, module_name, fast)
        else:
            module.replace_weight(dequantize(*stored), FrozenQuantizer(spec["scheme"], spec["bits"], spec["per_row"], stored))
    left = [k for k, t in stored_tensors(model).items() if t.is_meta]
    if unexpected or left:
        raise RuntimeError(f"{path}: loading left {left} unfilled and {unexpected} unused (a minidq bug)")
    return model.eval()


def load_packed_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer embedded in a packed file (minidq export embeds the checkpoint's)."""
    _, tensors = read_packed(path)
    if TOKENIZER not in tensors:
        raise PackedFileError(f"{path}: no tokenizer inside (export it with a tokenizer)")
    return Tokenizer(TokenizerBackend.from_str(bytes(tensors[TOKENIZER].numpy()).decode("utf-8")))
