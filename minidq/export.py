"""Real low-bit storage: pack a quantized student into bytes, load it back exactly, count every byte.

A fake-quantized model (minidq.quant) is no smaller than its teacher: it keeps fp32 latent
weights and rounds them at every forward. A deployed student needs only what that forward
used, each weight's integer codes and its scale(s). One concept per file:

    deploy/packing.py      codes <-> bytes: b bits per code, or 3-level codes as trits (1.6 bits)
    deploy/freeze.py       a quantized model with its weights rounded once (FrozenQuantizer)
    deploy/packed_file.py  the file: save_packed, load_packed (integer or fake backend), checks
    deploy/intinfer.py     integer inference: int8 x int8 -> int32 linears and LM head
    deploy/footprint.py    where every byte of a file goes

This module gathers their public names: `from minidq.export import save_packed, load_packed`.
"""

from .deploy.footprint import Footprint, footprint, format_footprint
from .deploy.freeze import FrozenQuantizer, freeze, stored_tensors, weight_quantizers
from .deploy.intinfer import to_integer
from .deploy.packed_file import (PackedFileError, checksum, load_packed, load_packed_tokenizer, read_header,
                          read_packed, save_packed)
from .deploy.packing import pack_bits, pack_codes, pack_trits, unpack_bits, unpack_codes, unpack_trits
from .fakequant import dequantize

__all__ = ["Footprint", "FrozenQuantizer", "PackedFileError", "checksum", "dequantize", "footprint",
           "format_footprint", "freeze", "load_packed", "load_packed_tokenizer", "pack_bits", "pack_codes",
           "pack_trits", "read_header", "read_packed", "save_packed", "stored_tensors", "to_integer",
           "unpack_bits", "unpack_codes", "unpack_trits", "weight_quantizers"]
