"""Real low-bit storage: pack a quantized student into bytes, load it back exactly, count every byte.

A fake-quantized model (minidq.quant) is no smaller than its teacher: it keeps fp32 latent
weights and rounds them at every forward. A deployed student needs only what that forward
used, each weight's integer codes and its scale(s), and this file stores exactly those.

Packing. A b-bit code takes b bits. Codes are first made unsigned (symmetric codes -q..q
become 0..2q) and then written as one bit stream, lowest bit first, so 8-bit codes are one
byte each, 4-bit codes two per byte, 2-bit codes four per byte, binary codes eight per byte.
Codes with 3 levels (TWN's -1/0/+1, or a symmetric 2-bit grid, which has the same levels) can
instead be packed as *trits*: five base-3 digits per byte, since 3^5 = 243 <= 256, i.e.
1.6 bits per weight instead of 2 (log2 3 = 1.585 bits is the floor).

File. One safetensors file (no pickle anywhere), named `*.packed` by convention:
    <name>.codes    uint8          a quantized weight's packed codes
    <name>.scale    float32        its scale(s), one or one per row, exactly as the forward computed them
    <name>.offset   float32        the grid's minimum (asymmetric quantizers only)
    <name>          fp16 or fp32   each tensor that is not quantized: LayerNorms, biases,
                                   final_logits_bias, positions (or int8 codes: `int8_positions`)
    tokenizer.json  uint8          the tokenizer file (optional; accounted apart from the model)
and str->str metadata: format and version, the BartConfig, the QuantConfig, the decoding
defaults, one spec per packed tensor (shape, scheme, bits, per_row, packing; a float's dtype and
shape are in safetensors' own index), and a sha256 over all of it, so a truncated or tampered
file is an error, never a silently different model.

Exactness. load_packed rebuilds each weight as `codes.to(scale.dtype) * scale`, the very
expression the quantizer's forward evaluates, so the weights are bit-identical. The loaded
model is *frozen*: weight quantizers become `FrozenQuantizer`s (identity: the weights already
sit on the grid) while activation quantizers stay (they are computed at run time). `freeze`
does the same in memory, which also speeds up generation: the fake-quantized model re-quantizes
its embedding matrix at every decoding step. Unquantized tensors are fp16 by default (outputs
then move by the tolerance measured in tests/test_export.py) or fp32 (outputs identical).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer as TokenizerBackend
from torch import nn

from .atomic import atomic_write
from .config import BartConfig
from .errors import MinidqError
from .model import Bart
from .quant import QuantConfig, Quantizer, quantize
from .tokenizer import Tokenizer

FORMAT, VERSION = "minidq-packed", "1"
FLOAT_DTYPES = {"fp16": torch.float16, "fp32": torch.float32}
SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "U8": torch.uint8}  # what packed files hold
SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1}
TOKENIZER = "tokenizer.json"


class PackedFileError(MinidqError, ValueError):
    """A packed file that is truncated, tampered with, or not one at all."""


# ---------------------------------------------------------------------------------------------
# Codes <-> bytes.

def code_range(scheme: str, bits: int) -> tuple[int, int]:
    """(lowest code, step between codes): code = unsigned * step + lowest."""
    if scheme == "binary":
        return -1, 2                           # {-1, +1} -> {0, 1}
    if scheme == "ternary":
        return -1, 1                           # {-1, 0, 1} -> {0, 1, 2}
    if scheme == "symmetric":
        return -(2 ** (bits - 1) - 1), 1       # -q..q -> 0..2q
    return 0, 1                                # asymmetric codes are unsigned already


def levels(scheme: str, bits: int) -> int:
    return {"binary": 2, "ternary": 3, "symmetric": 2 ** bits - 1}.get(scheme, 2 ** bits)


def pack_bits(u: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned codes < 2^bits -> bytes: one bit stream, each code lowest bit first.

    For 1, 2, 4 bits this is 8/bits codes per byte with code i at bit bits*(i % (8/bits)),
    e.g. four 2-bit codes a, b, c, d -> a | b << 2 | c << 4 | d << 6. Other widths straddle bytes."""
    if bits == 8:
        return u.flatten().to(torch.uint8)  # the stream of 8-bit codes is the codes themselves
    stream = ((u.reshape(-1, 1).to(torch.uint8) >> torch.arange(bits, dtype=torch.uint8)) & 1).flatten()
    stream = torch.cat([stream, stream.new_zeros(-stream.numel() % 8)])  # pad to whole bytes
    return (stream.view(-1, 8) << torch.arange(8, dtype=torch.uint8)).sum(1, dtype=torch.uint8)


def unpack_bits(data: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """The first n codes of pack_bits' stream."""
    if bits == 8:
        return data[:n]
    stream = ((data.reshape(-1, 1) >> torch.arange(8, dtype=torch.uint8)) & 1).flatten()[: n * bits]
    return (stream.view(n, bits) << torch.arange(bits, dtype=torch.uint8)).sum(1, dtype=torch.uint8)


def pack_trits(u: torch.Tensor) -> torch.Tensor:
    """Unsigned codes in {0, 1, 2} -> bytes, five per byte as a base-3 number t0 + 3 t1 + ... + 81 t4."""
    u = u.flatten().to(torch.uint8)
    u = torch.cat([u, u.new_zeros(-u.numel() % 5)]).view(-1, 5)  # (bytes, 5)
    return (u * torch.tensor([1, 3, 9, 27, 81], dtype=torch.uint8)).sum(1, dtype=torch.uint8)  # <= 242


# Byte value -> its five base-3 digits, lowest first (values 243..255 never occur in a file).
TRIT_TABLE = torch.tensor([[v // 3 ** i % 3 for i in range(5)] for v in range(256)], dtype=torch.uint8)


def unpack_trits(data: torch.Tensor, n: int) -> torch.Tensor:
    return TRIT_TABLE[data.int()].flatten()[:n]  # (bytes, 5) -> (n,)


def pack_codes(codes: torch.Tensor, scheme: str, bits: int, packing: str) -> tuple[torch.Tensor, str]:
    """(bytes, packing used): trits only where the codes have 3 levels, bits otherwise."""
    lo, step = code_range(scheme, bits)
    u = ((codes.to(torch.int16) - lo) // step).to(torch.uint8)
    if packing == "trits" and levels(scheme, bits) == 3:
        return pack_trits(u), "trits"
    return pack_bits(u, bits), "bits"


def unpack_codes(data: torch.Tensor, spec: dict) -> torch.Tensor:
    n = math.prod(spec["shape"])
    u = unpack_trits(data, n) if spec["packing"] == "trits" else unpack_bits(data, spec["bits"], n)
    lo, step = code_range(spec["scheme"], spec["bits"])
    dtype = torch.uint8 if spec["scheme"] == "asymmetric" else torch.int8  # as the quantizers return them
    return (u.to(torch.int16) * step + lo).to(dtype).view(spec["shape"])


def dequantize(codes: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    """Exactly the quantizers' forward: codes.to(x.dtype) * scale (+ offset), x.dtype = scale.dtype."""
    x = codes.to(scale.dtype) * scale
    return x if offset is None else x + offset


# ---------------------------------------------------------------------------------------------
# Frozen quantized models.

class FrozenQuantizer(nn.Module):
    """Takes a Quantizer's place once its weight holds the dequantized values: the forward is
    the identity (the weight already sits on the grid) and `codes` returns the stored codes and
    scales, so a frozen or loaded model packs again into the very same tensors."""

    def __init__(self, scheme: str, bits: int, per_row: bool, codes: tuple[torch.Tensor, ...]):
        super().__init__()
        self.scheme, self.bits, self.per_row = scheme, bits, per_row
        self.stored = codes  # a plain attribute: not a buffer, so the state_dict is unchanged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def codes(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.stored

    def extra_repr(self) -> str:
        return f"{self.scheme}, bits={self.bits}, per_row={self.per_row}, frozen"


def weight_quantizers(model: nn.Module) -> dict[str, nn.Module]:
    """'<module>.weight' -> its (possibly frozen) weight quantizer; the tied embedding once."""
    return {f"{name}.weight": m.weight_quant for name, m in model.named_modules()
            if isinstance(getattr(m, "weight_quant", None), (Quantizer, FrozenQuantizer))}


def set_frozen(module: nn.Module, weight: torch.Tensor, quantizer: FrozenQuantizer) -> None:
    """A new Parameter, so latent weights held elsewhere (an optimizer, a teacher) are untouched."""
    module.weight = nn.Parameter(weight, requires_grad=False)
    module.weight_quant = quantizer


@torch.no_grad()
def freeze(model: Bart) -> Bart:
    """Replace each quantized weight by its dequantized value, in place; identical outputs.

    For inference: the latent fp32 weights are dropped, so a frozen model cannot train further."""
    for name, q in weight_quantizers(model).items():
        if isinstance(q, Quantizer):
            module = model.get_submodule(name.removesuffix(".weight"))
            codes = tuple(t.detach() for t in q.codes(module.weight))
            # dequantize(*codes) is what q(module.weight) returns, bit for bit, at half the cost
            set_frozen(module, dequantize(*codes), FrozenQuantizer(q.scheme, q.bits, q.per_row, codes))
    return model


def stored_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, once: the tied embedding appears as `shared.weight` only."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


# ---------------------------------------------------------------------------------------------
# Saving and loading.

def layout(name: str, spec: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The file tensors (safetensors dtype, shape) that a quantized tensor's spec takes: what
    the loader checks and what the footprint counts."""
    shape = tuple(spec["shape"])
    n = math.prod(shape)
    nbytes = -(-n // 5) if spec["packing"] == "trits" else -(-n * spec["bits"] // 8)
    scale_shape = (shape[0],) + (1,) * (len(shape) - 1) if spec["per_row"] else ()
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
        raise ValueError(f"packing: {packing!r} is not 'bits' or 'trits'")
    if float_dtype not in FLOAT_DTYPES:
        raise ValueError(f"float_dtype: {float_dtype!r} is not one of {tuple(FLOAT_DTYPES)}")
    quantizers = weight_quantizers(model)
    tensors: dict[str, torch.Tensor] = {}
    specs: dict[str, dict] = {}
    for name, value in stored_tensors(model).items():
        value = value.detach().cpu()
        q = quantizers.get(name)
        if q is None and int8_positions and "embed_positions" in name:
            q = Quantizer("symmetric", 8, per_row=True)
        if q is None:
            tensors[name] = value.to(FLOAT_DTYPES[float_dtype]).contiguous()  # its index entry says dtype and shape
            continue
        if value.dtype != torch.float32:
            raise ValueError(f"{name}: packing needs a float32 model (scales are stored float32), got {value.dtype}")
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
    atomic_write(Path(path), lambda f: save_file(tensors, f, metadata=metadata))


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
    return metadata, tensors


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
def load_packed(path: str | Path) -> Bart:
    """The frozen quantized Bart a packed file holds; weights bit-identical to the exported ones."""
    metadata, tensors = read_packed(path)
    specs = json.loads(metadata["tensors"])
    model = Bart(BartConfig.from_dict(json.loads(metadata["config"])))
    quant_config = json.loads(metadata["quant_config"])
    if quant_config is not None:
        quantize(model, QuantConfig(**quant_config))  # rebuilds the activation quantizers
    model.generation_config = json.loads(metadata["generation_config"])

    targets, quantizers = stored_tensors(model), weight_quantizers(model)
    problems = check_tensors(tensors, specs, targets)
    problems += [f"{k}: stored unquantized, but its quant_config quantizes it" for k in quantizers if k not in specs]
    if problems:
        raise PackedFileError(f"{path}: tensors do not match its config\n  " + "\n  ".join(problems))
    for name, target in targets.items():
        if name not in specs:
            target.copy_(tensors[name])
            continue
        spec = specs[name]
        stored = (unpack_codes(tensors[f"{name}.codes"], spec), tensors[f"{name}.scale"])
        stored += (tensors[f"{name}.offset"],) if spec["scheme"] == "asymmetric" else ()
        if name in quantizers:
            set_frozen(model.get_submodule(name.removesuffix(".weight")), dequantize(*stored),
                       FrozenQuantizer(spec["scheme"], spec["bits"], spec["per_row"], stored))
        else:  # int8 positions: plain floats again
            target.copy_(dequantize(*stored))
    return model.eval()


def load_packed_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer embedded in a packed file (minidq export embeds the checkpoint's)."""
    _, tensors = read_packed(path)
    if TOKENIZER not in tensors:
        raise PackedFileError(f"{path}: no tokenizer inside (export it with a tokenizer)")
    return Tokenizer(TokenizerBackend.from_str(bytes(tensors[TOKENIZER].numpy()).decode("utf-8")))


# ---------------------------------------------------------------------------------------------
# Footprint accounting.

ROWS = ("token embedding", "positions", "encoder linears", "decoder linears", "LM head", "norms + biases",
        "scales", "metadata", "container", "tokenizer")


def component(name: str) -> str:
    """Which row of the footprint table a stored tensor belongs to."""
    name = name.removeprefix("model.")
    if name == TOKENIZER:
        return "tokenizer"
    if name.endswith((".scale", ".offset")):
        return "scales"
    name = name.removesuffix(".codes")
    if name == "shared.weight" or name.endswith("embed_tokens.weight"):
        return "token embedding"
    if "embed_positions" in name:
        return "positions"
    if name == "final_logits_bias" or name.startswith("lm_head"):
        return "LM head"
    if name.endswith(".bias") or "norm" in name:
        return "norms + biases"
    return "encoder linears" if name.startswith("encoder.") else "decoder linears"


@dataclass
class Footprint:
    """Where every byte of a model file goes. rows: component -> (values, bytes), summing to file_bytes."""

    path: str
    description: str
    rows: dict[str, tuple[int, int]]
    file_bytes: int

    @property
    def params(self) -> int:
        """Stored model values: parameters (the tied embedding once) and final_logits_bias; not scales."""
        return sum(v for k, (v, _) in self.rows.items() if k not in ("scales", "metadata", "container", "tokenizer"))

    @property
    def model_bytes(self) -> int:
        """The file less the embedded tokenizer: what compares with a teacher's model.safetensors."""
        return self.file_bytes - self.rows["tokenizer"][1]

    @property
    def fp32_bytes(self) -> int:
        return 4 * self.params


def footprint(path: str | Path) -> Footprint:
    """Account for a packed file, or an HF folder's model.safetensors, from its header alone.

    A packed tensor's bytes follow from its spec (values x bits), a float's from its dtype; the
    metadata row is its JSON text; the container row is the rest of the file: the 8-byte
    length, safetensors' index (dtype, shape, offsets of each tensor) and alignment padding."""
    path = Path(path)
    file = path / "model.safetensors" if path.is_dir() else path
    header = read_header(file)
    metadata = header.pop("__metadata__", {})
    packed = metadata.get("format") == FORMAT
    specs = json.loads(metadata["tensors"]) if packed else {}
    rows = dict.fromkeys(ROWS, (0, 0))

    def add(row: str, values: int, nbytes: int) -> None:
        rows[row] = (rows[row][0] + values, rows[row][1] + nbytes)

    in_specs = set()
    for name, spec in specs.items():
        for stored, (dtype, shape) in layout(name, spec).items():
            in_specs.add(stored)
            values = math.prod(spec["shape"]) if stored.endswith(".codes") else math.prod(shape)
            add(component(stored), values, SAFETENSORS_BYTES[dtype] * math.prod(shape))
    for name, t in header.items():
        if name not in in_specs:
            n = math.prod(t["shape"])
            add(component(name), 0 if name == TOKENIZER else n, SAFETENSORS_BYTES[t["dtype"]] * n)
    if metadata:
        add("metadata", 0, len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode()))
    size = file.stat().st_size
    add("container", 0, size - sum(b for _, b in rows.values()))

    floats = "/".join(sorted({t["dtype"] for k, t in header.items() if k not in in_specs and k != TOKENIZER}))
    if packed:
        quant = json.loads(metadata["quant_config"])
        packings = "/".join(sorted({s["packing"] for s in specs.values()})) or "-"
        description = (f"minidq packed v{metadata['version']}, {QuantConfig(**quant) if quant else 'not quantized'}, "
                       f"codes packed as {packings}, floats {floats}")
    else:
        description = f"safetensors checkpoint ({floats})"
    return Footprint(str(file), description, rows, size)


def format_footprint(fp: Footprint, reference: Footprint | None = None) -> str:
    """The footprint as a text table, with the compression ratio against fp32 (and `reference`'s file)."""
    mib = 2 ** 20
    lines = [f"{fp.path}: {fp.description}",
             f"{'component':<18}{'values':>13}{'bits/value':>12}{'bytes':>14}{'MiB':>9}{'share':>8}"]
    for name, (values, nbytes) in fp.rows.items():
        bits = f"{8 * nbytes / values:.2f}" if values else "-"
        share = nbytes / fp.file_bytes
        lines.append(f"{name:<18}{values:>13,}{bits:>12}{nbytes:>14,}{nbytes / mib:>9.3f}{share:>8.1%}")
    lines.append(f"{'file':<18}{'':>13}{'':>12}{fp.file_bytes:>14,}{fp.file_bytes / mib:>9.3f}")
    lines.append("LM head: the tied token embedding (counted once, above) plus final_logits_bias.")
    lines.append(f"model bytes (file less tokenizer) {fp.model_bytes / mib:.3f} MiB; fp32 of the same "
                 f"{fp.params:,} values {fp.fp32_bytes / mib:.3f} MiB: {fp.fp32_bytes / fp.model_bytes:.2f}x smaller")
    if reference is not None:
        lines.append(f"against {reference.path} ({reference.model_bytes / mib:.3f} MiB): "
                     f"{reference.model_bytes / fp.model_bytes:.2f}x smaller")
    return "\n".join(lines)
