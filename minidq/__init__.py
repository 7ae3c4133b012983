"""minidq: DQ-BART (distillation + quantization of BART), minimal and from scratch."""

from .config import BartConfig
from .model import Bart
from .quant import QuantConfig
from .tokenizer import Tokenizer

__all__ = ["Bart", "BartConfig", "QuantConfig", "Tokenizer"]
