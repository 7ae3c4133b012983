"""Two recipes for a quantized student: DQ-BART's own, and the one minidq's recipe study chose.

A recipe is what the W-E-A bits leave open: how activations are clipped and scaled, how weights
are scaled, and the learning rate. Both train the same students on the same budget; the README's
tables show both, and benchmarks/results/recipe_study.md how "minidq" was chosen (on the
validation split, by the key metric of the students along their training).

    paper    DQ-BART's code (after TernaryBERT): weights and activations clamped to +-2.5 before
             quantizing, one max-abs scale per activation tensor, ternary (TWN) weights with one
             scale per weight matrix; lr 5e-4 (minidq's toy budget; the authors train BART-base
             20 epochs at 3e-5)
    minidq   no clamp (the toy teachers' activations reach well beyond 2.5, and cutting them costs
             more than a coarser grid does), one TWN scale per output row of each weight; lr 1e-4

At full budget the two end level on the 6-6 students; students with fewer decoder layers (6-3)
want the paper's higher learning rate (the study measures +25 facts-right points on QA from lr
5e-4 alone), so pass --lr 5e-4 with --recipe minidq there.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    quant: dict = field(default_factory=dict)  # QuantConfig options on top of the W-E-A bits
    lr: float = 5e-4                           # peak learning rate of the student's training


RECIPES = {
    "paper": Recipe(),
    "minidq": Recipe(quant=dict(clip_val=None, weight_per_row=True), lr=1e-4),
}


def recipe_of(quant_options: dict, lr: float) -> str | None:
    """The name of the recipe that these QuantConfig options and learning rate are, or None
    (a setting of its own, e.g. a study's variant): how a shipped student's record or a row of
    `make demo` says which recipe trained it."""
    return next((name for name, r in RECIPES.items() if r.quant == quant_options and r.lr == lr), None)
