"""Distillation: a student made of teacher layers, and the losses that pull it towards the teacher.

DQ-BART's student starts as a copy of the teacher with fewer layers (the embeddings, norms and
LM head copied, the layers taken from maximally spaced teacher layers), and is trained on

    loss = w_ce * CE(labels) + w_logits * L_logits + w_hidden * L_hidden + w_attention * L_attention

computed from the *quantized* student's forward, with the teacher frozen. Each distillation
term compares the student with the teacher on the same batch:

    L_logits     MSE between the output logits (as the authors' code), or KL at a temperature
    L_hidden     MSE between each student layer's output and its mapped teacher layer's output,
                 plus the embedding outputs, encoder and decoder
    L_attention  MSE between the post-softmax attention maps of mapped layers: encoder
                 self-attention, decoder self-attention and cross-attention

Two ways to add the terms up (`DistillConfig.reduction`):

    "sum"   the authors' (run_summarization_no_trainer.py): every layer pair's MSE is *added*:
            hidden = encoder pairs + decoder pairs (embeddings included) + an encoder-output
            term summed over the examples of the batch; attention = encoder + decoder + cross
            maps of every student layer. Their `--weighted` preset is logits 0.8, hidden and
            attention 3 (`DistillConfig.weighted()`).
    "mean"  each term is the mean over its layer pairs, and hidden/attention the mean over their
            kinds, so a term's pull does not grow with the number of layers.

At 6-6, "sum" pulls the hidden terms about 14x and the attention terms 18x harder against the
task loss than "mean". Unlike the authors' code, padding positions do not count in either: a
padded position's hidden state is whatever the network makes of a <pad>, and matching it
teaches the student nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from . import distributed
from .config import ConfigError, kept_heads
from .model import Bart, Seq2SeqLMOutput

# The authors' layer choice for a 6-layer teacher (student depth -> teacher layers copied).
SIX_LAYER_MAP = {1: [5], 2: [0, 5], 3: [0, 2, 5], 4: [0, 2, 3, 5], 5: [0, 1, 3, 4, 5], 6: [0, 1, 2, 3, 4, 5]}


def spaced_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Which teacher layers a student of `student_layers` copies: maximally spaced.

    For a 6-layer teacher, the authors' table (SIX_LAYER_MAP). For other depths: one layer
    copies the last (it sits next to the output the student must reproduce); more keep the
    first and the last and spread the rest evenly, rounding half up.
    """
    if not 1 <= student_layers <= teacher_layers:
        raise ConfigError(f"a student needs 1..{teacher_layers} layers, got {student_layers}")
    if teacher_layers == 6:
        return list(SIX_LAYER_MAP[student_layers])
    if student_layers == 1:
        return [teacher_layers - 1]
    step = (teacher_layers - 1) / (student_layers - 1)
    return [int(i * step + 0.5) for i in range(student_layers)]


def parse_layers(text: str) -> tuple[int, int]:
    """'6-3' -> (6, 3): a student's encoder and decoder layers, as the paper writes them."""
    parts = text.strip().split("-")
    if len(parts) != 2 or not all(p.strip().isdecimal() and int(p) >= 1 for p in parts):
        raise ConfigError(f"layers {text!r}: expected encoder-decoder layers such as 6-3")
    return int(parts[0]), int(parts[1])


def spaced_map(teacher: Bart, encoder_layers: int, decoder_layers: int) -> dict[str, list[int]]:
    """{"encoder": [...], "decoder": [...]}: the teacher layer each student layer copies (and is
    paired with by the distillation losses), maximally spaced (`spaced_layers`)."""
    return {"encoder": spaced_layers(teacher.config.encoder_layers, encoder_layers),
            "decoder": spaced_layers(teacher.config.decoder_layers, decoder_layers)}


def make_student(teacher: Bart, encoder_layers: int, decoder_layers: int,
                 layer_map: dict[str, list[int]] | None = None) -> Bart:
    """A new Bart with `encoder_layers` and `decoder_layers` copied from the teacher.

    Everything that is not a layer (token and position embeddings, layernorm_embedding, mBART's
    final LayerNorms, final_logits_bias) is copied too. Student layer i copies teacher layer
    layer_map[side][i], by default `spaced_map`; DistillLoss pairs them the same way (give it the
    same layer_map when it is not the default).
    """
    layer_map = layer_map or spaced_map(teacher, encoder_layers, decoder_layers)
    for side, n in (("encoder", encoder_layers), ("decoder", decoder_layers)):
        depth = getattr(teacher.config, f"{side}_layers")
        if len(layer_map[side]) != n or not all(0 <= i < depth for i in layer_map[side]):
            raise ConfigError(f"layer_map[{side!r}] = {layer_map[side]}: need {n} indices in 0..{depth - 1}")
    student = Bart(replace(teacher.config, encoder_layers=encoder_layers, decoder_layers=decoder_layers),
                   teacher.generation_config)
    teacher_state = teacher.state_dict()
    state = {k: v for k, v in teacher_state.items() if ".layers." not in k}
    for side in ("encoder", "decoder"):
        for i, t in enumerate(layer_map[side]):
            prefix = f"{side}.layers.{t}."
            state.update({f"{side}.layers.{i}.{k[len(prefix):]}": v
                          for k, v in teacher_state.items() if k.startswith(prefix)})
    student.load_state_dict(state)
    return student


# ---------------------------------------------------------------- the loss terms

def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the positions where mask is 1 (mask broadcasts over the rest of a).
    Under torchrun: over the positions of the global batch (distributed.rank_weight)."""
    mask = mask.to(a.dtype).expand_as(a)
    count = mask.sum()
    return ((a - b) ** 2 * mask).sum() / count.clamp(min=1) * distributed.rank_weight(count)


def logits_loss(student: torch.Tensor, teacher: torch.Tensor, target_mask: torch.Tensor,
                kind: str = "mse", temperature: float = 1.0) -> torch.Tensor:
    """Match the output distributions at real target positions. student/teacher: (B, T, V)."""
    if kind == "mse":
        return masked_mse(student, teacher, target_mask[..., None])
    if kind == "kl":
        # KL(teacher || student) of temperature-softened distributions, x T^2 so the gradient's
        # scale does not shrink with T (Hinton et al., 2015).
        log_p_s = F.log_softmax(student / temperature, dim=-1)
        log_p_t = F.log_softmax(teacher / temperature, dim=-1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)  # (B, T)
        count = target_mask.sum()
        return (kl * target_mask).sum() / count.clamp(min=1) * temperature ** 2 * distributed.rank_weight(count)
    raise ConfigError(f"logits loss must be 'mse' or 'kl', got {kind!r}")


def hidden_loss(student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...], layer_map: list[int],
                mask: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Embedding outputs matched to each other, and student layer i's output to teacher layer
    layer_map[i]'s. Hidden-state tuples hold (embeddings, layer 1, ..., layer n); mask: (B, T).
    reduction: "mean" over the pairs, or "sum" (the authors')."""
    pairs = [(0, 0)] + [(i + 1, t + 1) for i, t in enumerate(layer_map)]
    total = sum(masked_mse(student[s], teacher[t], mask[..., None]) for s, t in pairs)
    return total / len(pairs) if reduction == "mean" else total


def attention_loss(student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...], layer_map: list[int],
                   query_mask: torch.Tensor, key_mask: torch.Tensor, reduction: str = "mean",
                   heads: list[list[int]] | None = None) -> torch.Tensor:
    """Attention maps (B, heads, T, S) of mapped layers, over real query x real key entries.
    heads: for a student with pruned heads, the teacher heads each student layer kept (its map
    is compared with those heads' maps)."""
    mask = (query_mask[:, None, :, None] * key_mask[:, None, None, :])  # (B, 1, T, S)
    total = sum(masked_mse(student[i], teacher[t] if heads is None else teacher[t][:, heads[i]], mask)
                for i, t in enumerate(layer_map))
    return total / len(layer_map) if reduction == "mean" else total


# ---------------------------------------------------------------- the training objective

@dataclass
class DistillConfig:
    ce: float = 1.0              # weight of the task loss (cross-entropy with the labels)
    logits: float = 1.0          # weight of L_logits; 0 switches the term off
    hidden: float = 1.0          # weight of L_hidden
    attention: float = 1.0       # weight of L_attention
    logits_kind: str = "mse"     # "mse" (the authors') or "kl"
    temperature: float = 2.0     # for logits_kind="kl"
    reduction: str = "mean"      # "mean" over layer pairs and kinds, or "sum" (the authors'; module docstring)

    def __post_init__(self) -> None:
        """Refuse weights that would train nothing (all 0) or backwards (negative), and a
        temperature that divides by 0: before training, not as a 'diverged' run after it."""
        if self.reduction not in ("mean", "sum"):
            raise ConfigError(f"reduction must be 'mean' or 'sum', got {self.reduction!r}")
        if self.logits_kind not in ("mse", "kl"):
            raise ConfigError(f"logits_kind must be 'mse' or 'kl', got {self.logits_kind!r}")
        for name in ("ce", "logits", "hidden", "attention"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} (the weight of a loss term): {value!r} must be a number >= 0")
        if not any(getattr(self, name) for name in ("ce", "logits", "hidden", "attention")):
            raise ConfigError("every loss weight is 0: nothing would be trained (set --w-ce or a --w-* above 0)")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ConfigError(f"temperature: {self.temperature!r} must be a number above 0")

    @classmethod
    def weighted(cls) -> "DistillConfig":
        """The authors' `--weighted` run: summed terms, logits 0.8, hidden and attention 3."""
        return cls(logits=0.8, hidden=3.0, attention=3.0, reduction="sum")


class DistillLoss:
    """`loss_fn` for minidq.train.train: task loss plus weighted distillation terms.

    The teacher runs in eval mode under no_grad: no dropout, no gradient, its weights never change.
    """

    def __init__(self, teacher: Bart, cfg: DistillConfig | None = None, layer_map: dict[str, list[int]] | None = None,
                 pruned_heads: dict[str, list[int]] | None = None):
        self.teacher = teacher.eval().requires_grad_(False)
        self.cfg = cfg if cfg is not None else DistillConfig()  # a fresh one: a default argument would be shared
        self.layer_map = layer_map  # None: maximally spaced for the student's depth, as make_student copies
        self.pruned_heads = pruned_heads or {}  # the student's config.pruned_attention_heads

    def kept_heads(self, path: str, layers: int) -> list[list[int]] | None:
        """For the student's `layers` attention modules "encoder.layers.{i}.self_attn" (path with
        {i}): the teacher heads each one kept; None when nothing was pruned."""
        if not self.pruned_heads:
            return None
        total = self.teacher.config.attention_heads(path)
        return [kept_heads(total, self.pruned_heads.get(path.format(i=i), ())) for i in range(layers)]

    def pairs(self, out: Seq2SeqLMOutput) -> tuple[list[int], list[int]]:
        """The teacher layers the student's encoder and decoder layers are paired with. The
        student's depth is read off its outputs (one attention map per layer, or one hidden state
        per layer and the embeddings), so the loss needs nothing from the student model itself."""
        if self.layer_map is not None:
            return self.layer_map["encoder"], self.layer_map["decoder"]
        depth = [len(maps) if maps else len(states) - 1 for maps, states in (
            (out.encoder_attentions, out.encoder_hidden_states), (out.decoder_attentions, out.decoder_hidden_states))]
        spaced = spaced_map(self.teacher, *depth)
        return spaced["encoder"], spaced["decoder"]

    def __call__(self, student: Bart, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.cfg
        wanted = dict(output_hidden_states=cfg.hidden > 0, output_attentions=cfg.attention > 0)
        out: Seq2SeqLMOutput = student(batch["input_ids"], batch["attention_mask"], labels=batch["labels"], **wanted)
        # the task loss: a mean over this batch's target tokens (under torchrun, the global batch's)
        terms = {"ce": out.loss * distributed.rank_weight((batch["labels"] != -100).sum())}
        if cfg.logits > 0 or cfg.hidden > 0 or cfg.attention > 0:
            if self.teacher.shared.weight.device != out.logits.device:
                self.teacher.to(out.logits.device)
            with torch.no_grad():
                ref: Seq2SeqLMOutput = self.teacher(  # the same decoder inputs; no labels: its CE is not needed
                    batch["input_ids"], batch["attention_mask"], decoder_input_ids=self.teacher.shift_right(batch["labels"]),
                    **wanted)
            src_mask = batch["attention_mask"]               # (B, S) real source tokens
            tgt_mask = (batch["labels"] != -100).long()      # (B, T) real target positions
            enc_map, dec_map = self.pairs(out) if cfg.hidden > 0 or cfg.attention > 0 else ([], [])
            if cfg.logits > 0:
                terms["logits"] = logits_loss(out.logits, ref.logits, tgt_mask, cfg.logits_kind, cfg.temperature)
            mean, r = cfg.reduction == "mean", cfg.reduction
            if cfg.hidden > 0:
                hidden = (hidden_loss(out.encoder_hidden_states, ref.encoder_hidden_states, enc_map, src_mask, r)
                          + hidden_loss(out.decoder_hidden_states, ref.decoder_hidden_states, dec_map, tgt_mask, r))
                if not mean:  # the authors' encoder-output term: one MSE per example, summed over the (global) batch
                    hidden = hidden + masked_mse(out.encoder_last_hidden_state, ref.encoder_last_hidden_state,
                                                 src_mask[..., None]) * distributed.total(len(src_mask))
                terms["hidden"] = hidden / 2 if mean else hidden
            if cfg.attention > 0:
                heads = {kind: self.kept_heads(path, len(maps)) for kind, path, maps in (
                    ("enc", "encoder.layers.{i}.self_attn", enc_map), ("dec", "decoder.layers.{i}.self_attn", dec_map),
                    ("cross", "decoder.layers.{i}.encoder_attn", dec_map))}
                attention = (
                    attention_loss(out.encoder_attentions, ref.encoder_attentions, enc_map, src_mask, src_mask, r,
                                   heads["enc"])
                    + attention_loss(out.decoder_attentions, ref.decoder_attentions, dec_map, tgt_mask, tgt_mask, r,
                                     heads["dec"])
                    + attention_loss(out.cross_attentions, ref.cross_attentions, dec_map, tgt_mask, src_mask, r,
                                     heads["cross"]))
                terms["attention"] = attention / 3 if mean else attention
        weights = {"ce": cfg.ce, "logits": cfg.logits, "hidden": cfg.hidden, "attention": cfg.attention}
        loss = sum(weights[k] * v for k, v in terms.items())
        return loss, {k: v.item() for k, v in terms.items()}
