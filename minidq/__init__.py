"""minidq: DQ-BART (distillation + quantization of BART), minimal and from scratch.

The public names are imported on first use (PEP 562), so that `python -m minidq` starts
without loading torch until its command needs it: a Ctrl-C during that start is then one
`minidq: interrupted` line like any other, not a traceback from inside torch's import.
"""

import importlib

_MODULE_OF = {"Bart": "model", "BartConfig": "config", "QuantConfig": "quant", "Tokenizer": "tokenizer"}
__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    raise AttributeError(f"module 'minidq' has no attribute {name!r}")
