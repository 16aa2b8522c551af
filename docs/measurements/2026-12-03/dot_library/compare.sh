#!/usr/bin/env bash
# XLA:CPU's dot library (jaxmbrl.cpu_dot): YNNPACK (jaxlib's default), YNNPACK for the dots only,
# and XLA's own dot emitter (Eigen), one after the other on the same machine, alternating, twice:
# the planning workloads for all three; model training and a whole default 5-seed, 10-episode
# PETS Pendulum run for "ynnpack" and "xla". The first "ynnpack" planning run also times
# mbrl-lib when its environment exists (benchmarks/common.py: PEER_TORCH).
# Usage, from the repository root with the venv active: bash compare.sh OUT_DIR
set -euo pipefail
out=${1:?OUT_DIR}
mkdir -p "$out"
lscpu > "$out/lscpu.txt"
flag() { python -c "from jaxmbrl import cpu_dot; print(cpu_dot.xla_flag('$1'))"; }
run() {  # run LIBRARY REP [full]: the benchmarks under that library's XLA_FLAGS
  local v=$1 rep=$2 full=${3:-} flags peer=--no-peer
  flags=$(flag "$v")
  [ "$v$rep" = ynnpack1 ] && peer=""
  echo "== $v rep $rep $(date +%T) XLA_FLAGS=$flags"
  XLA_FLAGS=$flags python benchmarks/bench_planning.py $peer --out "$out/planning_${v}_$rep" \
    --only pendulum_cem pendulum_cem_pop50 pendulum_cem_pop2000 cartpole_cem pendulum_icem pendulum_mppi \
    2>&1 | tee "$out/planning_${v}_$rep.log" | grep -E "^\w+ \[(float32|bfloat16)\]" || true
  [ -n "$full" ] || return 0
  XLA_FLAGS=$flags python benchmarks/bench_training.py --no-peer --out "$out/training_${v}_$rep" \
    > "$out/training_${v}_$rep.log" 2>&1
  XLA_FLAGS=$flags python benchmarks/tune_pets.py --seeds 5 --episodes 10 --out "$out/pets_${v}_$rep" "$v:" \
    > "$out/pets_${v}_$rep.log" 2>&1
}
for rep in 1 2; do
  run ynnpack $rep full
  run xla $rep full
  run ynnpack_dot $rep
done
echo "== done $(date +%T)"
