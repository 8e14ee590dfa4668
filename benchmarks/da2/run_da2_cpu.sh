#!/usr/bin/env bash
# Runs our Depth Anything V2 Small forward pass (bench_da2_cpu) and the official PyTorch one
# (torch_da2.py) in one run on the same machine, same recipe weights, same input tensors and
# thread count, one process per size and implementation, and prints time per forward and peak
# RSS of both side by side (median over --repeat runs, ours and torch alternating), plus
# max |ours - torch| of the depth (apples to apples).
#
# usage: benchmarks/da2/run_da2_cpu.sh [--build DIR] [--official DIR] [--runs N]
#            [--threads T] [--repeat R] [--sizes "518x518 518x924"]
#            [--openblas-coretype SkylakeX]  (exported for our runs; torch uses MKL;
#            DM_NO_BLAS_REEXEC=1 in the environment measures OpenBLAS's own choice)
#            [--baseline DIR]  (a second build of ours, e.g. of main, run alternately with
#            ours as impl=ours_ref: before/after speed ratio in the same run)
#            [--no-torch]  (only ours and the baseline)
# needs: a built bench_da2_cpu (see benchmarks/README.md), python3 with torch, numpy,
#        safetensors, opencv-python-headless (imported by the official code); ../shared
#        (DM_SHARED overrides) for the recipe.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build-bench
official=/tmp/official/da2
runs=3
threads=$(nproc)
repeat=3
sizes="518x518 518x924"
baseline=
torch=1
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --official) official=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --openblas-coretype) export OPENBLAS_CORETYPE=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --no-torch) torch=0; shift ;;
    *) echo "run_da2_cpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
shared=${DM_SHARED:-$root/../shared}
recipe=$shared/golden/da2_vits/recipe.json
bin=$build/benchmarks/bench_da2_cpu
need=("$bin" "$recipe")
[ "$torch" = 1 ] && need+=("$official/depth_anything_v2/dpt.py")
[ -n "$baseline" ] && need+=("$baseline/benchmarks/bench_da2_cpu")
for f in "${need[@]}"; do
  [ -e "$f" ] || { echo "run_da2_cpu.sh: missing $f (see benchmarks/README.md)" >&2; exit 1; }
done
work=${TMPDIR:-/tmp}/dm_bench_da2
mkdir -p "$work"
weights=$work/da2_vits_recipe.safetensors
# Our recipe generator writes the weights once; both implementations load this file.
[ -s "$weights" ] || "$bin" --recipe "$recipe" --write-weights "$weights"

log=$work/run_$(date +%Y%m%d_%H%M%S).log
echo "# run_da2_cpu.sh $(date -u +%FT%TZ) commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src include CMakeLists.txt || echo " + uncommitted changes in src/include")" | tee "$log"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) nproc=$(nproc) threads=$threads" | tee -a "$log"
# OpenBLAS picks its GEMM kernels from the CPU model; an unknown model (e.g. a new Xeon
# under a hypervisor) falls back to generic SSE3 "Prescott" kernels. Our programs re-execute
# themselves with OPENBLAS_CORETYPE then (dm_cpu_tune_blas, as the CLI): log what they use.
echo "# our openblas core: $("$bin" --help | sed -n 's/^blas core: //p') (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} DM_NO_BLAS_REEXEC=${DM_NO_BLAS_REEXEC:-unset})" | tee -a "$log"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
for size in $sizes; do
  h=${size%x*}; w=${size#*x}
  io=$work/io_${h}x${w}.safetensors
  for r in $(seq 1 "$repeat"); do
    dump=()
    [ "$r" = 1 ] && dump=(--dump "$io")
    OMP_NUM_THREADS=$threads "$bin" --weights "$weights" --height "$h" --width "$w" \
      --runs "$runs" --threads "$threads" "${dump[@]}" | tee -a "$log"
    if [ -n "$baseline" ]; then
      OMP_NUM_THREADS=$threads "$baseline/benchmarks/bench_da2_cpu" --weights "$weights" \
        --height "$h" --width "$w" --runs "$runs" --threads "$threads" |
        sed 's/ impl=ours / impl=ours_ref /' | tee -a "$log"
    fi
    # torch always reads our input tensor (same values every repeat; compares each time).
    [ "$torch" = 1 ] || continue
    python3 "$here/torch_da2.py" --official "$official" --weights "$weights" --height "$h" \
      --width "$w" --runs "$runs" --threads "$threads" --inputs "$io" | tee -a "$log"
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
python3 "$root/benchmarks/common/summarize.py" "$log" da2 ms_median lower size | tee "$log.summary"
echo "# log: $log"
