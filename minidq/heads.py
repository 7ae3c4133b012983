"""Attention-head pruning, the paper's future work: which heads matter, and removing the rest.

Michel et al. (2019), "Are Sixteen Heads Really Better than One?": put a gate xi_h on each head's
output (1 = the model as it is) and take the importance of head h as the expected size of the
loss's derivative with respect to its gate, I_h = E_x |dL(x)/dxi_h|, a first-order estimate of
what removing the head costs. Importances are normalized per attention module (L2), as in the
paper's code, so that modules of different scale compete on one ranking; the least important
heads of the whole model are then removed for real (`Bart.prune_heads`: smaller q/k/v/out_proj).

A gate multiplies the head's slice of out_proj's input, i.e. its context vectors: the same as
multiplying its attention map (the map enters the output linearly), and with the gate at 0 the
output is the pruned model's, bit for bit in full precision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch

from .config import BartConfig, ConfigError
from .model import Attention, Bart

LossFn = Callable[[Bart, dict], tuple[torch.Tensor, dict]]


def attention_paths(model: Bart) -> dict[str, Attention]:
    """'encoder.layers.0.self_attn' -> the module, for every attention of the model."""
    return {name: m for name, m in model.named_modules() if isinstance(m, Attention)}


@contextmanager
def gated(model: Bart, gates: dict[str, torch.Tensor]) -> Iterator[None]:
    """Within the block, each head's output is multiplied by its gate: gates[path] has one entry
    per head the module has (0 silences a head, a tensor that requires grad measures it)."""
    def gate(module: Attention, path: str):
        def hook(out_proj, args):
            return (args[0] * gates[path].repeat_interleave(module.head_dim).to(args[0].dtype),)
        return hook
    paths = attention_paths(model)
    hooks = [paths[path].out_proj.register_forward_pre_hook(gate(paths[path], path)) for path in gates]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def head_importance(model: Bart, batches: Iterable[dict], loss_fn: LossFn,
                    normalize: bool = True) -> dict[str, torch.Tensor]:
    """|dL/dxi_h| summed over `batches`, per attention module (eval mode: no dropout noise).
    normalize: divide each module's vector by its L2 norm (Michel et al.'s ranking)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gates = {path: torch.ones(m.num_heads, device=device, requires_grad=True)
             for path, m in attention_paths(model).items()}
    importance = {path: torch.zeros(len(g), dtype=torch.float64, device=device) for path, g in gates.items()}
    for batch in batches:
        with gated(model, gates):
            loss = loss_fn(model, batch)[0]
        for path, grad in zip(gates, torch.autograd.grad(loss, list(gates.values()))):
            importance[path] += grad.abs().double()
    model.train(was_training)
    if normalize:
        importance = {p: v / (v.norm() + 1e-20) for p, v in importance.items()}
    return {p: v.cpu() for p, v in importance.items()}


def choose_heads(importance: dict[str, torch.Tensor], fraction: float) -> dict[str, list[int]]:
    """The heads to prune: the `fraction` of all heads of lowest importance, over the whole
    model, except that every module keeps its most important head (a module with no head left
    would give only its bias; Michel et al. allow it, but a pruned checkpoint must still load
    into per-module head counts of at least one)."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"prune fraction {fraction!r}: must be in [0, 1)")
    target = round(fraction * sum(len(v) for v in importance.values()))
    ranked = sorted((float(v[h]), path, h) for path, v in importance.items() for h in range(len(v)))
    left = {path: len(v) for path, v in importance.items()}
    pruned: dict[str, list[int]] = {path: [] for path in importance}
    for _, path, h in ranked:
        if target == 0:
            break
        if left[path] > 1:
            pruned[path].append(h)
            left[path] -= 1
            target -= 1
    return {path: sorted(h) for path, h in pruned.items() if h}


def prune_least_important(model: Bart, batches: Iterable[dict], loss_fn: LossFn, fraction: float,
                          steps: int = 1) -> dict[str, list[int]]:
    """Measure, choose and prune `fraction` of the model's heads, in `steps` equal rounds that
    each measure the importances again on what is left (Michel et al. prune iteratively; one
    round is one-shot). Returns model.config.pruned_attention_heads."""
    batches = list(batches)
    total = sum(len(model.config.kept_heads(p)) for p in model.config.attention_paths())
    for step in range(1, steps + 1):
        left = sum(m.num_heads for m in attention_paths(model).values())
        now = round(fraction * total * step / steps) - (total - left)  # heads to remove in this round
        importance = head_importance(model, batches, loss_fn)
        chosen = choose_heads(importance, now / left) if now > 0 else {}
        model.prune_heads({path: [model.config.kept_heads(path)[h] for h in hs] for path, hs in chosen.items()})
    return model.config.pruned_attention_heads


def heads_table(config: BartConfig) -> str:
    """Heads left per layer, for `minidq info`: one line per kind of attention."""
    paths = config.attention_paths()
    kept, total = sum(len(config.kept_heads(p)) for p in paths), sum(config.attention_heads(p) for p in paths)
    lines = [f"attention heads: {kept} of {total} kept (per layer, first to last)"]
    for name, path, layers in (("encoder self-attention", "encoder.layers.{i}.self_attn", config.encoder_layers),
                               ("decoder self-attention", "decoder.layers.{i}.self_attn", config.decoder_layers),
                               ("decoder cross-attention", "decoder.layers.{i}.encoder_attn", config.decoder_layers)):
        counts = [f"{len(config.kept_heads(path.format(i=i)))}/{config.attention_heads(path)}" for i in range(layers)]
        lines.append(f"  {name:<24} " + " ".join(counts))
    return "\n".join(lines)
