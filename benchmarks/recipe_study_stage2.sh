#!/usr/bin/env bash
# The recipe study's full-budget runs (benchmarks/results/recipe_study.md, stage 2), as three queues
# of single-thread runs; run two side by side on a 2-core CPU. Rerun a queue to resume it: a finished
# run is skipped, an interrupted one continues from its last checkpoint.
#
#     bash benchmarks/recipe_study_stage2.sh minidq     # the minidq recipe: DQ and QAT, 6-6 and 6-3, three tasks
#     bash benchmarks/recipe_study_stage2.sh paper      # the same students with the paper's recipe
#     bash benchmarks/recipe_study_stage2.sh extra      # DQ 8-8-8 6-6 and DQ 2-2-8 6-1, minidq recipe (shipped rows)
#     bash benchmarks/recipe_study_stage2.sh seeds      # the key pair (DQ and QAT 2-2-8 6-6, minidq) at seeds 1 and 2
#     bash benchmarks/recipe_study_stage2.sh kl         # DQ 2-2-8 6-6 with the KL logits term on QA and translation
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
run() { OMP_NUM_THREADS=1 nice -n 10 "$PY" benchmarks/recipe_study.py run "$@" --steps 1500 --eval-every 250; }
case "${1:?minidq, paper, extra, seeds or kl}" in
  minidq|paper)
    if [ "$1" = minidq ]; then recipe="--setting noclip-row --lr 1e-4"; else recipe="--setting paper --lr 5e-4"; fi
    for layers in 6-6 6-3; do for method in DQ QAT; do for task in summarization qa translation; do
      run --task $task --method $method --layers $layers $recipe
    done; done; done ;;
  extra)
    for task in summarization qa translation; do
      run --task $task --method DQ --quant 8-8-8 --layers 6-6 --setting noclip-row --lr 1e-4
      run --task $task --method DQ --quant 2-2-8 --layers 6-1 --setting noclip-row --lr 1e-4
    done ;;
  seeds)
    for seed in 1 2; do for task in summarization qa translation; do for method in DQ QAT; do
      run --task $task --method $method --layers 6-6 --setting noclip-row --lr 1e-4 --seed $seed
    done; done; done ;;
  kl)
    for task in qa translation; do
      run --task $task --method DQ --layers 6-6 --setting noclip-row-kl --lr 1e-4
    done ;;
  *) echo "unknown queue $1: minidq, paper, extra, seeds or kl" >&2; exit 2 ;;
esac
