"""Where every byte of a model file goes: the footprint report of a packed file or an HF checkpoint.

Counted from the file's header alone: a packed tensor's bytes follow from its spec (values x
bits), a float's from its dtype, so the table explains the compression ratio line by line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..quant import QuantConfig
from .packed_file import FORMAT, SAFETENSORS_BYTES, TOKENIZER, layout, read_header

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
