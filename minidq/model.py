"""BART and mBART, written out by hand: attention, encoder and decoder layers, the LM head.

Module and parameter names are Hugging Face's (`self_attn.q_proj`, `fc1`, `layernorm_embedding`,
`shared`, ...), so loading a checkpoint is a key-for-key copy (see pretrained.py).

The two models share every line of code; `config.pre_layer_norm` (mBART) moves each
LayerNorm in front of its sub-layer and adds one final LayerNorm per stack.

Attention is written out explicitly (scores -> softmax -> weighted sum) for two reasons: the
distillation losses need the attention maps, and DQ-BART quantizes the queries, keys, attention
probabilities and values. When neither the map nor its quantizer is wanted, the same maths
runs through PyTorch's fused kernel (`F.scaled_dot_product_attention`), which is faster. Those four
quantizer slots (`q_act`, `k_act`, `probs_act`, `v_act`) are identities until
`minidq.quant.quantize` fills them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .config import BartConfig, ConfigError
from .fakequant import FakeQuantizer, NoQuant

if TYPE_CHECKING:  # quant.py imports this module
    from .quant import QuantConfig

# One layer's decoding cache: {"self": (k, v), "cross": (k, v)}, each (B, heads, T, head_dim).
LayerCache = dict[str, tuple[torch.Tensor, torch.Tensor]]

ACT2FN = {
    "gelu": nn.GELU(),
    "gelu_new": nn.GELU(approximate="tanh"),
    "relu": nn.ReLU(),
    "silu": nn.SiLU(),
    "swish": nn.SiLU(),
    "tanh": nn.Tanh(),
}


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """BART's decoder input: the target shifted right by one, starting with decoder_start_token_id.

    Teacher forcing: at step t the decoder sees the true tokens < t and predicts token t.
    Ignored label positions (-100) become padding.
    """
    shifted = labels.new_full(labels.shape, pad_token_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


def shift_tokens_right_mbart(labels: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """mBART's decoder input: the last non-pad token (the language code) wraps round to the front.

    mBART targets end with `</s> <lang>`; the decoder starts from `<lang>` instead of a fixed token.
    """
    tokens = labels.masked_fill(labels == -100, pad_token_id)
    last = (tokens.ne(pad_token_id).sum(dim=1) - 1).unsqueeze(-1)  # (B, 1) index of the last real token
    shifted = tokens.roll(1, dims=1)
    shifted[:, 0] = tokens.gather(1, last).squeeze(-1)
    return shifted


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a keep-mask (1 = attend) into a bias added to attention scores (0 or a huge negative).

    The most negative finite float, as HF does, rather than -inf: a fully masked row then
    gives a uniform softmax instead of NaN.
    """
    return (1.0 - mask.to(dtype)) * torch.finfo(dtype).min


class TokenEmbedding(nn.Embedding):
    """The shared token embedding, which is also the LM head (tied): `project` scores hidden
    states against every row. Its quantized and integer forms (minidq.quant, minidq.deploy.intinfer)
    implement the same two calls."""

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.weight)  # (B, T, V)


class LearnedPositionalEmbedding(nn.Embedding):
    """Position table with BART's offset: rows 0 and 1 are unused, position p reads row p + 2.

    The offset is a fairseq legacy (positions used to start after the padding index);
    checkpoints carry max_position_embeddings + 2 rows, so we keep it.
    """

    offset = 2

    def __init__(self, num_positions: int, d_model: int):
        super().__init__(num_positions + self.offset, d_model)

    def forward(self, seq_len: int, past_len: int = 0) -> torch.Tensor:  # type: ignore[override]
        positions = torch.arange(past_len, past_len + seq_len, device=self.weight.device)
        return super().forward(positions + self.offset)  # (T, C)


class Attention(nn.Module):
    """Multi-head attention: encoder self-attention, causal decoder self-attention, or cross-attention."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, head_dim: int | None = None):
        """head_dim: d_model // num_heads, unless heads were pruned (num_heads then counts those left)."""
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim or d_model // num_heads
        self.scaling = self.head_dim ** -0.5
        self.dropout = dropout
        inner = num_heads * self.head_dim
        self.q_proj = nn.Linear(d_model, inner)
        self.k_proj = nn.Linear(d_model, inner)
        self.v_proj = nn.Linear(d_model, inner)
        self.out_proj = nn.Linear(inner, d_model)
        # Activation-quantizer slots (DQ-BART quantizes Q, K, the attention probabilities and V).
        self.q_act: FakeQuantizer = NoQuant()
        self.k_act: FakeQuantizer = NoQuant()
        self.probs_act: FakeQuantizer = NoQuant()
        self.v_act: FakeQuantizer = NoQuant()

    def set_activation_quantizers(self, q: FakeQuantizer, k: FakeQuantizer, v: FakeQuantizer,
                                  probs: FakeQuantizer) -> None:
        self.q_act, self.k_act, self.v_act, self.probs_act = q, k, v, probs

    @torch.no_grad()
    def prune(self, heads: list[int]) -> None:
        """Remove `heads` (indices among this module's heads) for real: their rows of q/k/v_proj
        and their columns of out_proj go, the tensors shrink. The output is what the unpruned
        module gives with those heads' outputs set to zero (minidq.heads.gated)."""
        kept = [h for h in range(self.num_heads) if h not in heads]
        index = torch.tensor([h * self.head_dim + i for h in kept for i in range(self.head_dim)], dtype=torch.long)
        self.q_proj, self.k_proj, self.v_proj = (select(p, index, dim=0) for p in (self.q_proj, self.k_proj, self.v_proj))
        self.out_proj = select(self.out_proj, index, dim=1)
        self.num_heads = len(kept)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, heads, T, head_dim)

    def quantized_early(self, cross: bool) -> bool:
        """Whether K and V enter the cache quantized, once, instead of at every step: when their
        codes can never change, i.e. in cross-attention (the encoder output is fixed) or with one
        scale per row (act_scale="token"). A per-tensor scale over a growing self-attention cache
        moves as it grows (DQ-BART's semantics), so that cache is quantized at every step."""
        return cross or self.k_act.per_row

    def key_values(self, source: torch.Tensor, cross: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """K and V of source (B, S, C), each (B, heads, S, head_dim), in the form the cache holds."""
        k, v = self.split_heads(self.k_proj(source)), self.split_heads(self.v_proj(source))
        return (self.k_act(k), self.v_act(v)) if self.quantized_early(cross) else (k, v)

    def forward(
        self,
        x: torch.Tensor,                        # (B, T, C) queries come from here
        key_value_states: torch.Tensor | None = None,  # (B, S, C) encoder output for cross-attention
        mask: torch.Tensor | None = None,       # additive, broadcastable to (B, heads, T, S)
        cache: LayerCache | None = None,
        cache_key: str = "self",
        need_weights: bool = False,             # return the attention map (distillation, inspection)
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, _ = x.shape
        cross = key_value_states is not None
        q = self.q_act(self.split_heads(self.q_proj(x)))  # (B, heads, T, head_dim)
        if cross and cache is not None and cache_key in cache:
            k, v = cache[cache_key]              # cross-attention: the encoder's K, V never change
        else:
            k, v = self.key_values(key_value_states if cross else x, cross)
            if cache is not None and not cross and cache_key in cache:
                past_k, past_v = cache[cache_key]      # self-attention: append this step's K, V
                k = torch.cat([past_k, k], dim=2)
                v = torch.cat([past_v, v], dim=2)
            if cache is not None:
                cache[cache_key] = (k, v)
        if not self.quantized_early(cross):
            k, v = self.k_act(k), self.v_act(v)

        if need_weights or self.probs_act.scheme is not None:
            # With per-row scales (act_scale="token"), inference computes the maps in float64, then
            # rounds to float32: float sums differ in their last bits with the shapes (one query or
            # a prefix, padded or not), and a quantizer would turn such a bit into a whole step.
            # float64 pushes that noise below float32's rounding: answers do not depend on the batch.
            exact = not self.training and self.probs_act.per_row
            dtype = torch.float64 if exact else q.dtype
            scores = (q.to(dtype) @ k.to(dtype).transpose(-1, -2)) * self.scaling  # (B, heads, T, S)
            if mask is not None:
                scores = scores + mask
            probs = scores.softmax(dim=-1).to(q.dtype)  # (B, heads, T, S): the attention map
            probs_q = F.dropout(self.probs_act(probs), p=self.dropout, training=self.training)
            out = (probs_q.to(dtype) @ v.to(dtype)).to(q.dtype)  # (B, heads, T, head_dim)
        else:  # the same maths in one fused kernel, when nobody needs the map or quantizes it
            probs = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling,
                                                 dropout_p=self.dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(B, T, -1)  # (B, T, heads * head_dim): heads side by side again
        return self.out_proj(out), probs


def select(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A copy of `linear` keeping the output rows (dim 0) or input columns (dim 1) in `index`."""
    weight = linear.weight.index_select(dim, index).clone()
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None,
                    device=weight.device, dtype=weight.dtype)
    new.weight.copy_(weight)
    if linear.bias is not None:
        new.bias.copy_(linear.bias.index_select(0, index) if dim == 0 else linear.bias)
    return new


def attention(config: BartConfig, path: str) -> Attention:
    """The attention module at `path`, with the heads config.pruned_attention_heads leaves it."""
    heads = config.attention_heads(path)
    return Attention(config.d_model, len(config.kept_heads(path)), config.attention_dropout,
                     head_dim=config.d_model // heads)


class Layer(nn.Module):
    """What encoder and decoder layers share: the residual wiring and the feed-forward block."""

    def __init__(self, config: BartConfig, ffn_dim: int, path: str):
        super().__init__()
        d = config.d_model
        self.pre_ln = config.pre_layer_norm
        self.dropout = config.dropout
        self.activation_dropout = config.activation_dropout
        self.activation_fn = ACT2FN[config.activation_function]
        self.self_attn = attention(config, f"{path}.self_attn")
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def pre(self, norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
        """The sub-layer's input: normalised first in mBART (pre-LN), as is in BART."""
        return norm(x) if self.pre_ln else x

    def post(self, norm: nn.LayerNorm, residual: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Add the sub-layer's output to the residual stream; BART (post-LN) normalises the sum."""
        x = residual + F.dropout(out, p=self.dropout, training=self.training)
        return x if self.pre_ln else norm(x)

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        h = self.activation_fn(self.fc1(self.pre(self.final_layer_norm, x)))  # (B, T, ffn_dim)
        h = self.fc2(F.dropout(h, p=self.activation_dropout, training=self.training))  # (B, T, C)
        return self.post(self.final_layer_norm, x, h)


class EncoderLayer(Layer):
    def __init__(self, config: BartConfig, index: int):
        super().__init__(config, config.encoder_ffn_dim, f"encoder.layers.{index}")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, probs = self.self_attn(self.pre(self.self_attn_layer_norm, x), mask=mask, need_weights=need_weights)
        x = self.post(self.self_attn_layer_norm, x, h)
        return self.ffn(x), probs


class DecoderLayer(Layer):
    """Self-attention (causal), then cross-attention to the encoder output, then the FFN."""

    def __init__(self, config: BartConfig, index: int):
        super().__init__(config, config.decoder_ffn_dim, f"decoder.layers.{index}")
        self.encoder_attn = attention(config, f"decoder.layers.{index}.encoder_attn")
        self.encoder_attn_layer_norm = nn.LayerNorm(config.d_model)

    def forward(
        self,
        x: torch.Tensor,
        self_mask: torch.Tensor | None,
        encoder_out: torch.Tensor,
        cross_mask: torch.Tensor | None,
        cache: LayerCache | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        h, self_probs = self.self_attn(self.pre(self.self_attn_layer_norm, x), mask=self_mask,
                                       cache=cache, cache_key="self", need_weights=need_weights)
        x = self.post(self.self_attn_layer_norm, x, h)
        h, cross_probs = self.encoder_attn(self.pre(self.encoder_attn_layer_norm, x), encoder_out,
                                           mask=cross_mask, cache=cache, cache_key="cross",
                                           need_weights=need_weights)
        x = self.post(self.encoder_attn_layer_norm, x, h)
        return self.ffn(x), self_probs, cross_probs


@dataclass
class StackOutput:
    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None  # embeddings output, then each layer's output
    attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


class Stack(nn.Module):
    """What encoder and decoder share: token + position embeddings, layernorm_embedding, layers."""

    def __init__(self, config: BartConfig, shared: nn.Embedding, num_layers: int, layer_cls: type[nn.Module]):
        super().__init__()
        self.dropout = config.dropout
        self.embed_tokens = shared  # tied: the very same module as Bart.shared
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.embed_positions = LearnedPositionalEmbedding(config.max_position_embeddings, config.d_model)
        self.layernorm_embedding = nn.LayerNorm(config.d_model)
        self.layers = nn.ModuleList([layer_cls(config, i) for i in range(num_layers)])
        # mBART (pre-LN) leaves each layer's output un-normalised, so one LayerNorm closes the stack.
        self.layer_norm = nn.LayerNorm(config.d_model) if config.pre_layer_norm else None

    def embed(self, input_ids: torch.Tensor, past_len: int = 0) -> torch.Tensor:
        x = self.embed_tokens(input_ids) * self.embed_scale             # (B, T, C)
        x = x + self.embed_positions(input_ids.shape[1], past_len)      # + (T, C)
        return F.dropout(self.layernorm_embedding(x), p=self.dropout, training=self.training)

    def finish(self, x: torch.Tensor, hidden: list[torch.Tensor] | None) -> torch.Tensor:
        """Apply mBART's final LayerNorm; like HF, it replaces the last recorded hidden state."""
        if self.layer_norm is not None:
            x = self.layer_norm(x)
            if hidden is not None:
                hidden[-1] = x
        return x


class Encoder(Stack):
    def __init__(self, config: BartConfig, shared: nn.Embedding):
        super().__init__(config, shared, config.encoder_layers, EncoderLayer)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> StackOutput:
        x = self.embed(input_ids)
        mask = None
        if attention_mask is not None:  # (B, S) -> (B, 1, 1, S): every query ignores padded keys
            mask = additive_mask(attention_mask[:, None, None, :], x.dtype)
        hidden = [x] if output_hidden_states else None
        attentions = []
        for layer in self.layers:
            x, probs = layer(x, mask, output_attentions)
            if hidden is not None:
                hidden.append(x)
            if output_attentions:
                attentions.append(probs)
        x = self.finish(x, hidden)
        return StackOutput(x, tuple(hidden) if hidden else None, tuple(attentions) if output_attentions else None)


class Decoder(Stack):
    def __init__(self, config: BartConfig, shared: nn.Embedding):
        super().__init__(config, shared, config.decoder_layers, DecoderLayer)

    def forward(
        self,
        input_ids: torch.Tensor,                      # (B, T) the new decoder tokens
        encoder_out: torch.Tensor,                    # (B, S, C)
        encoder_attention_mask: torch.Tensor | None = None,  # (B, S)
        decoder_attention_mask: torch.Tensor | None = None,  # (B, past + T)
        cache: list[LayerCache] | None = None,        # one dict per layer, filled in place
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> StackOutput:
        T = input_ids.shape[1]
        past_len = cache[0]["self"][0].shape[2] if cache and "self" in cache[0] else 0
        x = self.embed(input_ids, past_len)
        # Causal mask over (new queries) x (past + new keys): query i may see keys <= past_len + i.
        keys = torch.arange(past_len + T, device=x.device)
        queries = torch.arange(past_len, past_len + T, device=x.device)
        keep = (keys[None, :] <= queries[:, None])[None, None]  # (1, 1, T, past + T)
        if decoder_attention_mask is not None:
            keep = keep & decoder_attention_mask[:, None, None, :].bool()
        self_mask = additive_mask(keep, x.dtype)
        cross_mask = None
        if encoder_attention_mask is not None:
            cross_mask = additive_mask(encoder_attention_mask[:, None, None, :], x.dtype)

        hidden = [x] if output_hidden_states else None
        self_attns, cross_attns = [], []
        for i, layer in enumerate(self.layers):
            x, self_probs, cross_probs = layer(x, self_mask, encoder_out, cross_mask,
                                               cache[i] if cache is not None else None, output_attentions)
            if hidden is not None:
                hidden.append(x)
            if output_attentions:
                self_attns.append(self_probs)
                cross_attns.append(cross_probs)
        x = self.finish(x, hidden)
        return StackOutput(x, tuple(hidden) if hidden else None,
                           tuple(self_attns) if output_attentions else None,
                           tuple(cross_attns) if output_attentions else None)


@dataclass
class Seq2SeqLMOutput:
    """Field names follow transformers' Seq2SeqLMOutput."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    past_key_values: list[LayerCache] | None = None
    encoder_last_hidden_state: torch.Tensor | None = None
    encoder_hidden_states: tuple[torch.Tensor, ...] | None = None
    encoder_attentions: tuple[torch.Tensor, ...] | None = None
    decoder_hidden_states: tuple[torch.Tensor, ...] | None = None
    decoder_attentions: tuple[torch.Tensor, ...] | None = None
    cross_attentions: tuple[torch.Tensor, ...] | None = None


class Bart(nn.Module):
    """BART (or mBART) for conditional generation: encoder, decoder and a tied LM head."""

    def __init__(self, config: BartConfig, generation_config: dict | None = None):
        super().__init__()
        self.config = config
        self.shared = TokenEmbedding(config.vocab_size, config.d_model, padding_idx=config.pad_token_id)
        self.encoder = Encoder(config, self.shared)
        self.decoder = Decoder(config, self.shared)
        # A fixed per-token logit offset that fairseq checkpoints carry; a buffer, not trained.
        self.register_buffer("final_logits_bias", torch.zeros(1, config.vocab_size))
        self.apply(self._init_weights)
        # State beyond the weights, saved and loaded with them:
        self.quant_config: QuantConfig | None = None   # see mark_quantized
        self.generation_config = dict(generation_config or {})  # decoding defaults (generation_config.json)

    def _init_weights(self, module: nn.Module) -> None:
        """BART's init: normal(0, init_std) weights, zero biases, zero row for the padding token."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.config.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        if self.config.model_type == "mbart":
            return shift_tokens_right_mbart(labels, self.config.pad_token_id)
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def lm_head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Tied LM head: scores against the input embedding matrix, plus final_logits_bias.

        A quantized embedding (minidq.quant, minidq.deploy.intinfer) projects its own way, with the
        quantized matrix that the inputs use too."""
        return self.shared.project(hidden) + self.final_logits_bias  # (B, T, V)

    def attention_modules(self) -> list[Attention]:
        """Every attention of the encoder and decoder (self- and cross-): where Q, K, V and the
        attention probabilities get their quantizers (minidq.quant)."""
        return [m for m in self.modules() if isinstance(m, Attention)]

    def mark_quantized(self, cfg: QuantConfig) -> None:
        """Record how minidq.quant.quantize rewrote the model: saved beside the weights, so that a
        load rebuilds the same quantizers before it reads the tensors."""
        self.quant_config = cfg

    def fill_generation_config(self, defaults: dict) -> None:
        """Decoding settings for those the model has none for; its own (saved) settings win."""
        self.generation_config = {**defaults, **self.generation_config}

    def prune_heads(self, heads: dict[str, list[int]]) -> None:
        """Remove attention heads for real, as transformers' `prune_heads` (which BART lacks there):
        {"encoder.layers.0.self_attn": [1, 3], ...}, indices among the module's original heads.
        Recorded in config.pruned_attention_heads, so a saved model rebuilds at its pruned shape;
        a module may lose more heads later (iterative pruning). Before quantization: learned
        scales would need pruning too."""
        if self.quant_config is not None:
            raise ConfigError("prune_heads: prune the full-precision model, then quantize it")
        done = self.config.pruned_attention_heads
        gone = [f"{path} head {h}" for path, hs in heads.items() for h in hs if h in done.get(path, ())]
        if gone:
            raise ConfigError(f"prune_heads: {', '.join(gone)} already pruned")
        config = replace(self.config, pruned_attention_heads={  # checks every path and index
            **done, **{path: sorted([*done.get(path, ()), *hs]) for path, hs in heads.items() if hs}})
        for path, pruned in heads.items():
            kept = self.config.kept_heads(path)  # original index -> index among the heads still there
            if pruned:
                self.get_submodule(path).prune([kept.index(h) for h in pruned])
        self.config = config

    def tie_embedding(self, embedding: nn.Module) -> None:
        """Put `embedding` (a quantized or integer one) in the place of the shared token embedding:
        the encoder, the decoder and the LM head keep using one module."""
        self.shared = self.encoder.embed_tokens = self.decoder.embed_tokens = embedding

    def forward(
        self,
        input_ids: torch.Tensor | None = None,          # (B, S)
        attention_mask: torch.Tensor | None = None,     # (B, S), 1 = real token
        decoder_input_ids: torch.Tensor | None = None,  # (B, T)
        labels: torch.Tensor | None = None,             # (B, T), -100 = ignore
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: StackOutput | None = None,     # reuse an encoder pass (generation)
        past_key_values: list[LayerCache] | None = None,
        use_cache: bool = False,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> Seq2SeqLMOutput:
        if encoder_outputs is None:
            if input_ids is None:
                raise ConfigError("forward needs input_ids (or encoder_outputs)")
            encoder_outputs = self.encoder(input_ids, attention_mask, output_hidden_states, output_attentions)
        if decoder_input_ids is None:
            if labels is None:
                raise ConfigError("forward needs decoder_input_ids or labels")
            decoder_input_ids = self.shift_right(labels)
        if use_cache and past_key_values is None:
            past_key_values = [{} for _ in self.decoder.layers]
        dec = self.decoder(decoder_input_ids, encoder_outputs.last_hidden_state, attention_mask,
                           decoder_attention_mask, past_key_values if use_cache else None,
                           output_hidden_states, output_attentions)
        logits = self.lm_head(dec.last_hidden_state)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return Seq2SeqLMOutput(
            logits=logits,
            loss=loss,
            past_key_values=past_key_values if use_cache else None,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
            decoder_hidden_states=dec.hidden_states,
            decoder_attentions=dec.attentions,
            cross_attentions=dec.cross_attentions,
        )

    @classmethod
    def from_pretrained(cls, path) -> "Bart":
        from .pretrained import load_pretrained
        return load_pretrained(cls, path)

    def save_pretrained(self, path) -> None:
        from .pretrained import save_pretrained
        save_pretrained(self, path)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        from .generate import generate
        return generate(self, input_ids, attention_mask, **kwargs)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
