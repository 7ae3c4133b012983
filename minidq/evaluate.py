"""Generate outputs for a list of sources and score them against references (ROUGE or BLEU)."""

from __future__ import annotations

import time
import warnings

import torch
from tqdm import tqdm

from .config import ConfigError
from .data import Example
from .errors import MinidqWarning
from .generate import resolve_config
from .metrics import bleu, chrf, rouge
from .model import Bart


@torch.no_grad()
def predict(model: Bart, tokenizer, sources: list[str], batch_size: int = 32, max_source_length: int = 256,
            progress: bool = True, **generate_kwargs) -> list[str]:
    """Decoded outputs, in the order of `sources`.

    Sources are batched by length (longest first) so little compute goes into padding;
    the outputs are put back in the original order. Nothing is cut short in silence: sources
    longer than max_source_length (or the model's position table) are cut there, and outputs
    that reached max_length may be cut mid-sentence; a MinidqWarning counts each.
    """
    model.eval()
    device = next(model.parameters()).device
    max_source_length = min(max_source_length, model.config.max_position_embeddings)
    max_length = resolve_config(model, generate_kwargs).max_length
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    outputs: list[str] = [""] * len(sources)
    long_sources = long_outputs = 0
    for start in tqdm(range(0, len(order), batch_size), desc="generate", leave=False,
                      disable=None if progress else True):  # None: only on a terminal (tqdm's rule)
        batch = [order[i] for i in range(start, min(start + batch_size, len(order)))]
        texts = [sources[i] for i in batch]
        long_sources += sum(len(row) > max_source_length for row in tokenizer(texts, padding=False,
                                                                                return_tensors=None)["input_ids"])
        enc = tokenizer(texts, max_length=max_source_length)
        ids = model.generate(enc["input_ids"].to(device), enc["attention_mask"].to(device), **generate_kwargs)
        long_outputs += int(((ids != tokenizer.pad_token_id).sum(1) >= max_length).sum())
        for i, text in zip(batch, tokenizer.batch_decode(ids.tolist(), skip_special_tokens=True)):
            outputs[i] = text.strip()
    # stacklevel 3: past torch.no_grad's wrapper, to predict's caller
    if long_sources:
        warnings.warn(MinidqWarning(f"{long_sources} of {len(sources)} sources were longer than "
                                    f"{max_source_length} tokens and were cut there"), stacklevel=3)
    if long_outputs:
        warnings.warn(MinidqWarning(f"{long_outputs} of {len(sources)} outputs reached max_length {max_length} "
                                    "and may be cut short (raise --max-length)"), stacklevel=3)
    return outputs


def evaluate(model: Bart, tokenizer, examples: list[Example], metric: str = "rouge", batch_size: int = 32,
             progress: bool = True, **generate_kwargs) -> dict:
    """ROUGE-1/2/L/Lsum (x100) or BLEU and chrF of generated outputs, plus generation speed."""
    start = time.perf_counter()
    preds = predict(model, tokenizer, [ex.source for ex in examples], batch_size, progress=progress,
                    **generate_kwargs)
    seconds = time.perf_counter() - start
    refs = [ex.target for ex in examples]
    if metric == "rouge":
        scores = {k: 100 * v for k, v in rouge(preds, refs).items()}
    elif metric == "bleu":
        scores = {"bleu": bleu(preds, refs), "chrf": chrf(preds, refs)}
    else:
        raise ConfigError(f"metric must be 'rouge' or 'bleu', got {metric!r}")
    return {**scores, "examples": len(examples), "seconds": seconds,
            "examples_per_s": len(examples) / seconds, "predictions": preds}
