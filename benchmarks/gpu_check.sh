#!/usr/bin/env bash
# One-GPU check of the issue-15 targets (planning rate of the mbrl-lib PETS model at
# populations 350..100000 in float32 and bfloat16, one PETS episode, gymnax rollouts); the
# work is done by benchmarks/gpu_check.py, whose docstring says what is measured and how.
#
# Usage (from anywhere):
#   bash benchmarks/gpu_check.sh [--out DIR] [--total-budget S]   # GPU: at most ~8 min
#   bash benchmarks/gpu_check.sh --cpu-smoke [--out DIR]          # tiny sizes, any backend
#   bash benchmarks/gpu_check.sh --prepare-wheels                 # here, with network (below)
# Writes DIR/gpu_check.json (default runs/gpu_check). Exit codes: 0 every phase ran, 1 a
# phase failed or was killed at its time limit, 2 no usable Python, 3 no GPU (nothing
# measured, no JSON written).
#
# Which Python: $PYTHON if set, else the first of .venv/bin/python and python3 that imports
# jax, gymnax and jaxmbrl (the checkout is put on PYTHONPATH) and whose
# jax.default_backend() is 'gpu'; with --cpu-smoke, the first that imports them. If none
# does and .gpu_wheels/ holds wheels, they are installed into /tmp/gpu_check_site (no
# network needed) and the choice is made again.
#
# On the lent GPU machine (no network). The .venv here (~1 GB, Python 3.11, CPU jaxlib)
# cannot travel (64 MiB limit); the machine's python3 has jax with the CUDA plugin, flax,
# optax, chex, orbax and matplotlib, but not gymnax/gymnasium. So, here, once:
#   echo /.gpu_wheels/ >> .git/info/exclude
#   bash benchmarks/gpu_check.sh --prepare-wheels        # pip download, ~1 MB of wheels
# then call the device tool's run with carry [".gpu_wheels"], timeout_s 590, and
#   set -o pipefail; bash benchmarks/gpu_check.sh --out $OUT 2>&1 | tee $OUT/gpu_check.log
# With network and an NVIDIA driver, the project's own venv can get the CUDA jaxlib instead:
#   .venv/bin/pip install -c constraints.txt "jax[cuda12]==0.10.2"   # or -e ".[cuda]"
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
WHEELS=${GPU_CHECK_WHEELS:-$ROOT/.gpu_wheels}
SITE=/tmp/gpu_check_site
export PYTHONUNBUFFERED=1

smoke=0
for arg in "$@"; do
  case $arg in
    --cpu-smoke | --quick) smoke=1 ;;
    -h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --prepare-wheels)
      # gymnax, gymnasium and farama-notifications at the versions in constraints.txt:
      # pure-Python wheels that the GPU machine's python3 lacks.
      pins=$(grep -E '^(gymnax|gymnasium|Farama-Notifications)==' constraints.txt)
      mkdir -p "$WHEELS" || exit 2
      # shellcheck disable=SC2086
      python3 -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" $pins || exit 2
      ls -l "$WHEELS"
      echo "carry [\"${WHEELS#"$ROOT"/}\"] in the device tool's run (and keep it out of git)"
      exit 0 ;;
  esac
done

# "ok BACKEND" or "missing MODULE: error" for one interpreter.
probe() {
  PYTHONPATH="$ROOT${EXTRA:+:$EXTRA}${PYTHONPATH:+:$PYTHONPATH}" "$1" - <<'EOF' 2>/dev/null
import importlib
for name in ("jax", "gymnax", "jaxmbrl"):
    try:
        importlib.import_module(name)
    except Exception as err:
        print(f"missing {name}: {type(err).__name__}: {err}".splitlines()[0][:200])
        raise SystemExit(0)
import jax
print("ok", jax.default_backend(), jax.__version__)
EOF
}

EXTRA=""
pick() {  # sets PY to the first candidate that imports everything (and sees a GPU if $1)
  PY=""
  for cand in ${PYTHON:-"$ROOT/.venv/bin/python" python3}; do
    command -v "$cand" >/dev/null 2>&1 || continue
    out=$(probe "$cand")
    echo "python $cand: ${out:-does not run}"
    case $out in
      "ok gpu"* | "ok cuda"*) PY=$cand; return 0 ;;
      ok*) [ "$1" = any ] && { PY=$cand; return 0; }; [ -z "${FALLBACK:-}" ] && FALLBACK=$cand ;;
    esac
  done
  return 1
}

want=gpu; [ $smoke = 1 ] && want=any
FALLBACK=""
if ! pick $want && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  echo "installing $(ls "$WHEELS"/*.whl | wc -l) carried wheels into $SITE"
  for cand in ${PYTHON:-python3}; do
    "$cand" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$WHEELS"/*.whl && break
  done
  EXTRA=$SITE
  pick $want
fi
PY=${PY:-$FALLBACK}  # no GPU anywhere: gpu_check.py says so ("no GPU: nothing measured")
if [ -z "$PY" ]; then
  echo "no usable Python: none of ${PYTHON:-.venv/bin/python python3} imports jax, gymnax and"
  echo "jaxmbrl (see the lines above). Run 'make install', or on the GPU machine carry the"
  echo "wheels of 'bash benchmarks/gpu_check.sh --prepare-wheels' as .gpu_wheels."
  exit 2
fi
export PYTHONPATH="$ROOT${EXTRA:+:$EXTRA}${PYTHONPATH:+:$PYTHONPATH}"
echo "using $PY"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# gpu_check.py keeps itself under --total-budget (450 s) plus 20 s, so keep that under ~520;
# this is the last guard.
exec timeout -k 10 570 "$PY" "$ROOT/benchmarks/gpu_check.py" "$@"
