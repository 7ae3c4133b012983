"""Greedy decoding and beam search with a KV cache, with Hugging Face's options and semantics.

`generate(model, input_ids, ...)` returns the same tokens as transformers' `generate` for the
options below, with HF's names, defaults and quirks:
  - `max_length` counts the decoder start token: the output is at most max_length tokens long;
  - `min_length` blocks EOS while the sequence (start token included) is shorter than it;
  - `forced_bos_token_id` is forced as the first generated token (mBART's target language),
    `forced_eos_token_id` as the last one when max_length is reached;
  - finished sequences are padded with pad_token_id.

What makes it fast is what makes it simple: the encoder runs once; the decoder is fed one new
token per step and reads the past from its KV cache; the cross-attention keys and values are
computed once per input and shared by its beams; and rows that are done (a greedy sequence that
hit EOS, an input whose beam search cannot improve) leave the batch instead of being carried along.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch

from .errors import MinidqError

if TYPE_CHECKING:  # model.py calls this module (Bart.generate)
    from .model import Bart, LayerCache


class GenerationError(MinidqError, ValueError):
    """A decoding option or input that generate() cannot use, named with its value."""


@dataclass
class GenerationConfig:
    """Decoding options: HF's names and HF's defaults."""

    max_length: int | None = None             # counts the decoder start token; unset: 20 new tokens
    max_new_tokens: int | None = None         # if set: max_length = 1 + max_new_tokens
    min_length: int = 0                       # EOS is blocked while the sequence is shorter
    num_beams: int = 1                        # 1 = greedy
    length_penalty: float = 1.0               # beam score = sum of log-probs / length ** length_penalty
    no_repeat_ngram_size: int = 0             # 0 = off; n = no n-gram may occur twice
    early_stopping: bool | str = False        # beam search: True, False or "never" (see beam_search)
    decoder_start_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    forced_bos_token_id: int | None = None    # mBART: the target-language code
    forced_eos_token_id: int | None = None


def resolve_config(model: Bart, options: dict) -> GenerationConfig:
    """Each option: the argument if given, else generation_config.json, else config.json, else HF's default.

    As in HF, an option given as None is set to None: forced_eos_token_id=None turns forced EOS off.
    """
    names = [f.name for f in fields(GenerationConfig)]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise GenerationError(f"generate() got unknown option(s) {', '.join(unknown)}; the options are: {', '.join(names)}")
    saved = model.generation_config
    values = {}
    for name in names:
        if name in options:
            values[name] = options[name]
        elif saved.get(name) is not None:
            values[name] = saved[name]
        elif getattr(model.config, name, None) is not None:
            values[name] = getattr(model.config, name)
    config = GenerationConfig(**values)
    if config.max_new_tokens is not None:
        config.max_length = 1 + config.max_new_tokens
    elif config.max_length is None:  # HF's default: 20 new tokens, within the position table
        config.max_length = min(1 + 20, model.config.max_position_embeddings)
    if config.decoder_start_token_id is None:  # HF's fallback for encoder-decoder models
        config.decoder_start_token_id = config.bos_token_id
    if config.pad_token_id is None:
        config.pad_token_id = config.eos_token_id
    return config


def describe(config: GenerationConfig) -> str:
    """The settings that decide what comes out, in one line (the CLI prints it before decoding)."""
    return (f"{config.num_beams} beam{'s' if config.num_beams > 1 else ''}, max_length {config.max_length}, "
            f"min_length {config.min_length}, length_penalty {config.length_penalty:g}, "
            f"no_repeat_ngram_size {config.no_repeat_ngram_size}, early_stopping {config.early_stopping}")


def check_arguments(model: Bart, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                    config: GenerationConfig) -> None:
    """Fail early, with the offending value, rather than deep inside the decoding loop."""
    if input_ids.dim() != 2 or input_ids.numel() == 0:
        raise GenerationError(f"input_ids must be a non-empty (batch, length) tensor, got shape {tuple(input_ids.shape)}")
    if attention_mask is not None and attention_mask.shape != input_ids.shape:
        raise GenerationError(f"attention_mask has shape {tuple(attention_mask.shape)}, "
                         f"input_ids has {tuple(input_ids.shape)}")
    for name in ("num_beams", "max_length", "min_length", "no_repeat_ngram_size"):
        if not isinstance(getattr(config, name), int):
            raise GenerationError(f"{name} must be an integer, got {getattr(config, name)!r}")
    if config.num_beams < 1:
        raise GenerationError(f"num_beams must be >= 1, got {config.num_beams}")
    if config.max_length < 2:
        raise GenerationError(f"max_length must be >= 2 (it counts the decoder start token), got {config.max_length}")
    if config.max_length <= config.min_length:
        raise GenerationError(f"max_length ({config.max_length}) must be greater than min_length ({config.min_length})")
    limit = model.config.max_position_embeddings
    if config.max_length > limit or input_ids.shape[1] > limit:
        raise GenerationError(f"max_length ({config.max_length}) and the input length ({input_ids.shape[1]}) "
                         f"must not exceed max_position_embeddings ({limit})")
    if not isinstance(config.length_penalty, (int, float)) or not math.isfinite(config.length_penalty):
        raise GenerationError(f"length_penalty must be a finite number, got {config.length_penalty!r}")
    if config.no_repeat_ngram_size < 0:
        raise GenerationError(f"no_repeat_ngram_size must be >= 0, got {config.no_repeat_ngram_size}")
    if config.early_stopping not in (True, False, "never"):
        raise GenerationError(f"early_stopping must be True, False or 'never', got {config.early_stopping!r}")
    for name in ("decoder_start_token_id", "eos_token_id"):
        if getattr(config, name) is None:
            raise GenerationError(f"no {name} in the arguments, the generation config or the model config")


def generate(
    model: Bart,
    input_ids: torch.Tensor,                     # (B, S)
    attention_mask: torch.Tensor | None = None,  # (B, S), 1 = real token
    use_cache: bool = True,
    **options,                                   # GenerationConfig fields: num_beams=4, max_length=60, ...
) -> torch.Tensor:
    """Generate output token ids (B, T), T <= max_length, starting with the decoder start token.

    Pass the attention_mask with a padded batch: like HF for encoder-decoder models, without
    one every input token is attended to, padding included.

    Options not given take the checkpoint's defaults (see `resolve_config`). `use_cache=False`
    re-runs the decoder over the whole prefix at every step: slower, same tokens.
    """
    config = resolve_config(model, options)
    check_arguments(model, input_ids, attention_mask, config)
    with torch.inference_mode():
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # no padding: skip the mask (adding zeros changes nothing)
        encoder_out = model.encoder(input_ids, attention_mask).last_hidden_state  # (B, S, C), computed once
        state = DecoderState(model, encoder_out, attention_mask, config.num_beams, use_cache)
        start = input_ids.new_full((input_ids.shape[0], 1), config.decoder_start_token_id)  # (B, 1)
        search = greedy_search if config.num_beams == 1 else beam_search
        return search(state, start, config)


class DecoderState:
    """What the decoder reads at every step, for the rows still being decoded.

    Rows are inputs (greedy) or beams, the beams of one input side by side (beam search).
    The KV cache is a list, one dict per decoder layer, {"self": (k, v), "cross": (k, v)},
    tensors (rows, heads, T, head_dim); the model appends to "self" at every step.
    """

    def __init__(self, model: Bart, encoder_out: torch.Tensor, attention_mask: torch.Tensor | None,
                 num_beams: int, use_cache: bool):
        def per_beam(x: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (B*beams, ...), each input's rows side by side
            return x if num_beams == 1 else x.repeat_interleave(num_beams, dim=0)

        self.model = model
        self.encoder_out = per_beam(encoder_out)  # (B*beams, S, C)
        self.attention_mask = None if attention_mask is None else per_beam(attention_mask)
        self.cache: list[LayerCache] | None = None
        if use_cache:
            # Cross-attention keys and values depend only on the input: compute them once per input, share across beams.
            self.cache = []
            for layer in model.decoder.layers:
                attn = layer.encoder_attn
                k, v = attn.key_values(encoder_out, cross=True)  # (B, heads, S, head_dim) each
                self.cache.append({"cross": (per_beam(k), per_beam(v))})  # (B*beams, heads, S, head_dim)

    def next_logits(self, sequences: torch.Tensor) -> torch.Tensor:
        """Logits (rows, V) of the token after each row of `sequences` (rows, T), in float32 as HF's."""
        new_tokens = sequences if self.cache is None else sequences[:, -1:]  # the cache holds the rest
        hidden = self.model.decoder(new_tokens, self.encoder_out, self.attention_mask, cache=self.cache)
        return self.model.lm_head(hidden.last_hidden_state[:, -1]).float()  # (rows, V)

    def select(self, rows: torch.Tensor, same_inputs: bool = False) -> None:
        """Keep the given rows, in this order: beams follow their parents, finished rows leave.

        When every row stays with its own input (beams reordered among themselves), the
        per-input tensors (encoder output, mask, cross-attention cache) need no copy.
        """
        if self.cache is not None:
            for layer in self.cache:
                for key in ("self",) if same_inputs else ("self", "cross"):
                    k, v = layer[key]
                    layer[key] = (k.index_select(0, rows), v.index_select(0, rows))
        if not same_inputs:
            self.encoder_out = self.encoder_out.index_select(0, rows)
            if self.attention_mask is not None:
                self.attention_mask = self.attention_mask.index_select(0, rows)


def process_logits(scores: torch.Tensor, sequences: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    """HF's logits processors for our options, in HF's order: n-gram blocking, min_length, forced tokens.

    scores (rows, V) are logits (greedy) or log-probs (beam search) of the token after `sequences`
    (rows, cur_len); banned tokens get -inf, a forced token is the only one left finite.
    """
    cur_len = sequences.shape[1]
    n = config.no_repeat_ngram_size
    if n and cur_len >= n:
        scores = scores.masked_fill(repeated_ngram_tokens(sequences, n, scores.shape[-1]), float("-inf"))
    if cur_len < config.min_length:
        scores[:, config.eos_token_id] = float("-inf")
    for token, step in ((config.forced_bos_token_id, 1), (config.forced_eos_token_id, config.max_length - 1)):
        if token is not None and cur_len == step:
            scores = torch.full_like(scores, float("-inf"))
            scores[:, token] = 0.0
    return scores


def repeated_ngram_tokens(sequences: torch.Tensor, n: int, vocab_size: int) -> torch.Tensor:
    """(rows, V) bool: tokens that would complete an n-gram already present in the row.

    The next token completes the n-gram (last n-1 tokens, token); wherever those n-1 tokens
    occurred before, the token that followed them then is banned now.
    """
    windows = sequences.unfold(1, n, 1)                            # (rows, cur_len-n+1, n): every n-gram so far
    prefix = sequences[:, sequences.shape[1] - n + 1:]             # (rows, n-1): the n-gram being completed
    matches = (windows[..., :-1] == prefix[:, None]).all(dim=-1)   # (rows, cur_len-n+1)
    banned = torch.zeros(sequences.shape[0], vocab_size + 1, dtype=torch.bool, device=sequences.device)
    banned.scatter_(1, torch.where(matches, windows[..., -1], vocab_size), True)  # non-matches go to a spare column
    return banned[:, :vocab_size]


def greedy_search(state: DecoderState, start: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    """Append the most likely token to every row; a row that emits EOS leaves the batch.

    start (B, 1) -> (B, T): T is max_length, or less if every row hit EOS earlier.
    """
    out = start.new_full((start.shape[0], config.max_length), config.pad_token_id)  # finished rows stay padded
    out[:, :1] = start
    rows = torch.arange(start.shape[0], device=start.device)  # the row of `out` each decoded row fills
    sequences = start                                         # (rows, cur_len) the rows still decoding
    for cur_len in range(1, config.max_length):
        tokens = process_logits(state.next_logits(sequences), sequences, config).argmax(dim=-1)  # (rows,)
        out[rows, cur_len] = tokens
        sequences = torch.cat([sequences, tokens[:, None]], dim=1)
        ended = tokens == config.eos_token_id
        if bool(ended.any()):
            if bool(ended.all()):
                return out[:, :cur_len + 1]
            keep = (~ended).nonzero().squeeze(1)
            rows, sequences = rows[keep], sequences[keep]
            state.select(keep)
    return out


def beam_search(state: DecoderState, start: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    """Beam search as transformers v5 does it; returns the best finished hypothesis per input.

    Each input keeps K = num_beams running beams, scored by their sum of token log-probs, and a
    list of up to K finished hypotheses. At every step:
      1. every running beam is extended by every token; the 2K best extensions are kept
         (2K, so that K remain to carry on even if K of them end here);
      2. an extension among the K best that ends (EOS, or max_length reached) becomes a finished
         hypothesis, scored sum_logprobs / generated_len ** length_penalty (generated_len counts
         EOS, not the start token); the list keeps the K best;
      3. the K best extensions that did not end are the new running beams; caches follow them;
      4. an input is done once its list is full and either early_stopping is True, or even the best
         running beam cannot beat the worst finished one. The best beam's hope is its score divided by
         generated_len ** length_penalty with the current length (HF's heuristic), or with max_length
         when early_stopping="never" and length_penalty > 0 (longer can only help then).
         Done inputs leave the batch.
    """
    K, B = config.num_beams, start.shape[0]
    alive = list(range(B))                                # the inputs still searching; A = len(alive)
    sequences = start.repeat_interleave(K, dim=0)         # (A*K, cur_len) running beams, an input's K side by side
    beam_scores = torch.zeros(B, K, device=start.device)  # (A, K) sum of log-probs of each running beam
    beam_scores[:, 1:] = -1e9                             # the K beams start equal: only the first may expand
    finished: list[list[tuple[float, torch.Tensor]]] = [[] for _ in range(B)]  # per input: (score, tokens), best first
    for cur_len in range(1, config.max_length):
        A = len(alive)
        log_probs = process_logits(state.next_logits(sequences).log_softmax(dim=-1), sequences, config)  # (A*K, V)
        V = log_probs.shape[-1]
        scores = (beam_scores[:, :, None] + log_probs.view(A, K, V)).view(A, K * V)
        top_scores, top_ids = scores.topk(2 * K)                         # (A, 2K), best first
        parents = top_ids // V + K * torch.arange(A, device=start.device)[:, None]  # (A, 2K) row of `sequences`
        tokens = top_ids % V                                             # (A, 2K)
        ended = (tokens == config.eos_token_id) | (cur_len + 1 == config.max_length)  # (A, 2K)

        penalised = top_scores / cur_len ** config.length_penalty  # cur_len = tokens generated, EOS included
        for a, j in ended[:, :K].nonzero().tolist():
            hypothesis = torch.cat([sequences[parents[a, j]], tokens[a, j, None]])
            add_hypothesis(finished[alive[a]], K, penalised[a, j].item(), hypothesis)
        if cur_len + 1 == config.max_length:
            break

        beam_scores, pick = top_scores.masked_fill(ended, float("-inf")).topk(K)  # (A, K) the running beams
        rows = parents.gather(1, pick).view(-1)                                  # (A*K,)
        sequences = torch.cat([sequences[rows], tokens.gather(1, pick).view(-1, 1)], dim=1)

        hope_len = config.max_length - 1 if config.early_stopping == "never" and config.length_penalty > 0 else cur_len
        best_hope = (beam_scores[:, 0] / hope_len ** config.length_penalty).tolist()
        keep = [a for a in range(A) if not is_done(finished[alive[a]], best_hope[a], config)]
        if not keep:
            break
        if len(keep) < A:  # some inputs are done: drop their beams
            alive = [alive[a] for a in keep]
            kept = torch.tensor(keep, device=start.device)
            beam_scores = beam_scores[kept]
            rows = rows.view(A, K)[kept].view(-1)
            sequences = sequences.view(A, K, -1)[kept].view(len(keep) * K, -1)
        state.select(rows, same_inputs=len(keep) == A)

    best = [hypotheses[0][1] for hypotheses in finished]
    out = start.new_full((B, max(len(tokens) for tokens in best)), config.pad_token_id)
    for b, tokens in enumerate(best):
        out[b, :len(tokens)] = tokens
    return out


def add_hypothesis(hypotheses: list[tuple[float, torch.Tensor]], num_beams: int, score: float,
                   tokens: torch.Tensor) -> None:
    """Insert into the best-first list if there is room or it beats the worst; keep num_beams."""
    if len(hypotheses) < num_beams or score > hypotheses[-1][0]:
        hypotheses.append((score, tokens))
        hypotheses.sort(key=lambda h: -h[0])  # stable: on a tie the older hypothesis stays ahead
        del hypotheses[num_beams:]


def is_done(hypotheses: list[tuple[float, torch.Tensor]], best_hope: float, config: GenerationConfig) -> bool:
    """Step 4 of `beam_search`: can this input's finished list no longer change?"""
    if len(hypotheses) < config.num_beams:
        return False
    return config.early_stopping is True or best_hope <= hypotheses[-1][0]
