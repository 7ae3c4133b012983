"""Start a model for one tokenizer from a model trained with another: a warm start across tasks.

    python data_samples/transfer_vocab.py SOURCE_MODEL TOKENIZER_DIR OUT_DIR

Real BART teachers are pretrained before they are fine-tuned; a small model trained from
scratch may never learn to copy names from its source (the QA teacher, trained from scratch,
had a validation loss of 1.8 after 1,400 steps, where the summarization teacher had broken
through to 0.4). A model that already copies is a better start. The two tasks have different
tokenizers, so the token-embedding rows are matched by token string: rows of tokens both
vocabularies have are copied (with their final_logits_bias), the others start at the mean row.
Every other tensor (layers, positions, norms) is copied as it is.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from minidq import Bart, Tokenizer  # noqa: E402


def transfer(source: Bart, source_tok: Tokenizer, tok: Tokenizer) -> tuple[Bart, int]:
    """A copy of `source` whose vocabulary is `tok`'s; returns it and the number of shared tokens."""
    old_vocab, new_vocab = source_tok._tok.get_vocab(), tok._tok.get_vocab()
    old = source.shared.weight.detach()
    emb = old.mean(0, keepdim=True).repeat(len(new_vocab), 1)  # (V_new, d_model)
    bias = torch.zeros(1, len(new_vocab))
    shared = [(i, old_vocab[t]) for t, i in new_vocab.items() if t in old_vocab]
    for new_id, old_id in shared:
        emb[new_id] = old[old_id]
        bias[0, new_id] = source.final_logits_bias[0, old_id]
    # mBART's decoder starts from the target-language code, whose id the new vocabulary decides
    start = tok.token_id(tok.tgt_lang) if tok.tgt_lang else source.config.decoder_start_token_id
    model = Bart(replace(source.config, vocab_size=len(new_vocab), decoder_start_token_id=start))
    model.generation_config = dict(source.generation_config)  # decoding defaults, with the new start id
    if "decoder_start_token_id" in model.generation_config:
        model.generation_config["decoder_start_token_id"] = start
    state = {k: v for k, v in source.state_dict().items() if "embed_tokens" not in k}
    state.update({"shared.weight": emb, "final_logits_bias": bias})
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("embed_tokens" in k for k in missing), (missing, unexpected)
    return model, len(shared)


def main() -> None:
    source_dir, tok_dir, out = map(Path, sys.argv[1:4])
    tok = Tokenizer.from_pretrained(tok_dir)
    model, shared = transfer(Bart.from_pretrained(source_dir), Tokenizer.from_pretrained(source_dir), tok)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    print(f"{out}: {shared} of {tok.vocab_size} tokens shared with {source_dir}")


if __name__ == "__main__":
    main()
