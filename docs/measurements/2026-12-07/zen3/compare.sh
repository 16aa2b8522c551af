#!/usr/bin/env bash
# XLA:CPU's dot library (jaxmbrl.cpu_dot) and the oneDNN float32 layer on an AMD EPYC family 25
# model 1 (AVX2, no AVX-512), which neither table in jaxmbrl names. One after the other on the
# same machine, alternating, twice: YNNPACK (jaxlib's default) and XLA's own dot (Eigen) for
# four float32 planning workloads, each also with the layers through oneDNN (`--dense xla
# onednn`, timed interleaved in one process), and model training under each dot library.
# Usage, from the repository root with the venv active: bash compare.sh OUT_DIR
set -euo pipefail
out=${1:?OUT_DIR}
mkdir -p "$out"
lscpu > "$out/lscpu.txt"
flag() { python -c "from jaxmbrl import cpu_dot; print(cpu_dot.xla_flag('$1'))"; }
for rep in 1 2; do
  for v in ynnpack xla; do
    flags=$(flag "$v")
    echo "== $v rep $rep $(date +%T) XLA_FLAGS=$flags"
    XLA_FLAGS=$flags python benchmarks/bench_planning.py --no-peer --dtypes float32 \
      --dense xla onednn --out "$out/planning_${v}_$rep" \
      --only pendulum_cem pendulum_cem_pop50 cartpole_cem pendulum_mppi \
      > "$out/planning_${v}_$rep.log" 2>&1
    grep -E "^\w+ \[" "$out/planning_${v}_$rep.log" || tail -3 "$out/planning_${v}_$rep.log"
    XLA_FLAGS=$flags python benchmarks/bench_training.py --no-peer --out "$out/training_${v}_$rep" \
      > "$out/training_${v}_$rep.log" 2>&1
    tail -2 "$out/training_${v}_$rep.log"
  done
done
echo "== done $(date +%T)"
