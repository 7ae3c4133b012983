"""Deployment: a quantized student in real low-bit form, and the integer machine that runs it.

    packing.py      codes <-> bytes: b bits per code, or 3-level codes as trits (1.6 bits)
    freeze.py       a quantized model with its weights rounded once (FrozenQuantizer)
    packed_file.py  the file: save_packed, load_packed (integer or fake backend), checks
    intinfer.py     integer inference: int8 x int8 -> int32 linears and LM head
    footprint.py    where every byte of a file goes

`minidq.export` gathers their public names.
"""
