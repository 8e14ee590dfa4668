#!/usr/bin/env bash
# Runs our RVM (bench_rvm_cpu) and the official PyTorch RVM (torch_rvm.py) in one run on the
# same machine, same frames, same downsample ratio and thread count, and prints frames/s of
# both and the ratio (median over --repeat runs, ours and torch alternating so that load
# drift hits both). Also prints max |ours - torch| of alpha/foreground on the last frame.
#
# usage: benchmarks/rvm/run_rvm_cpu.sh [--build DIR] [--official DIR] [--warmup N]
#            [--timed M] [--threads T] [--repeat R] [--jit] [--frames-file F]
#            [--variant mobilenetv3|resnet50] [--weights FILE] [--size WxH]
#            [--openblas-coretype SkylakeX]  (exported for our runs; torch uses MKL;
#            DM_NO_BLAS_REEXEC=1 in the environment measures OpenBLAS's own choice)
# --variant resnet50: RVM ResNet50, default weights the recipe weights made with
#   build/tests/dm_make_recipe_weights ../shared/golden/rvm_r50/recipe.json (no trained ResNet50
#   checkpoint here; the arithmetic and so the speed is that of the real model), default size
#   1920x1080 (the issue's 1080p comparison); mobilenetv3 keeps 1280x720.
# needs: a built bench_rvm_cpu (see benchmarks/README.md), python3 with torch, torchvision,
#        numpy, safetensors; ffmpeg (to extract frames); ../shared (DM_SHARED overrides).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build-bench
official=/tmp/official/rvm
warmup=5
timed=20
threads=$(nproc)
repeat=3
jit=0
frames_file=
variant=mobilenetv3
weights=
size=
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --official) official=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --timed) timed=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --openblas-coretype) export OPENBLAS_CORETYPE=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --jit) jit=1; shift ;;
    --frames-file) frames_file=$2; shift 2 ;;
    --variant) variant=$2; shift 2 ;;
    --weights) weights=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    *) echo "run_rvm_cpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
shared=${DM_SHARED:-$root/../shared}
video=$shared/videos/05_default_juggle.mp4
bin=$build/benchmarks/bench_rvm_cpu
case $variant in
  mobilenetv3) tag=rvm; : "${weights:=$shared/models/rvm_mobilenetv3.safetensors}"; : "${size:=1280x720}" ;;
  resnet50) tag=rvm_resnet50; : "${size:=1920x1080}"
    if [ -z "$weights" ]; then
      weights=${TMPDIR:-/tmp}/dm_bench_rvm/rvm_resnet50_recipe.safetensors
      mkdir -p "$(dirname "$weights")"
      [ -s "$weights" ] || "$build/tests/dm_make_recipe_weights" "$shared/golden/rvm_r50/recipe.json" "$weights"
    fi ;;
  *) echo "run_rvm_cpu.sh: --variant mobilenetv3 or resnet50" >&2; exit 2 ;;
esac
w=${size%x*}; h=${size#*x}
for f in "$bin" "$weights" "$official/model/model.py"; do
  [ -e "$f" ] || { echo "run_rvm_cpu.sh: missing $f (see benchmarks/README.md)" >&2; exit 1; }
done
work=${TMPDIR:-/tmp}/dm_bench_rvm
mkdir -p "$work"
if [ -z "$frames_file" ]; then
  # 24 real 720p frames (the main matting clip, from frame 42: the man is in view); decoded
  # once with the ffmpeg CLI so that both implementations read identical bytes.
  frames_file=$work/juggle_${w}x${h}_24.rgb
  if [ ! -s "$frames_file" ]; then
    ffmpeg -v error -ss 1.75 -i "$video" -frames:v 24 -vf scale=${w}:${h} -f rawvideo \
      -pix_fmt rgb24 -y "$frames_file"
  fi
fi

log=$work/run_$(date +%Y%m%d_%H%M%S).log
echo "# run_rvm_cpu.sh $(date -u +%FT%TZ) commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src include CMakeLists.txt || echo " + uncommitted changes in src/include")" | tee "$log"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) nproc=$(nproc) threads=$threads" | tee -a "$log"
# OpenBLAS picks its GEMM kernels from the CPU model; an unknown model (e.g. a new Xeon
# under a hypervisor) falls back to generic SSE3 "Prescott" kernels. Our programs re-execute
# themselves with OPENBLAS_CORETYPE then (dm_cpu_tune_blas, as the CLI): log what they use.
echo "# our openblas core: $("$bin" --help | sed -n 's/^blas core: //p') (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} DM_NO_BLAS_REEXEC=${DM_NO_BLAS_REEXEC:-unset})" | tee -a "$log"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"

ratio_line=$("$bin" --frames "$frames_file" --width $w --height $h --warmup 0 --timed 0 \
  --weights "$weights" --threads "$threads" --variant "$variant" | grep '^RESULT')
ratio=$(sed -n 's/.* ratio=\([0-9.]*\).*/\1/p' <<<"$ratio_line")
echo "# our auto downsample ratio: $ratio (used for both)" | tee -a "$log"

for r in $(seq 1 "$repeat"); do
  dump=()
  cmp=()
  if [ "$r" = 1 ]; then dump=(--dump "$work/ours_last.safetensors"); cmp=(--compare "$work/ours_last.safetensors"); fi
  OMP_NUM_THREADS=$threads "$bin" --frames "$frames_file" --width $w --height $h \
    --warmup "$warmup" --timed "$timed" --weights "$weights" --threads "$threads" \
    --ratio "$ratio" --variant "$variant" "${dump[@]}" | tee -a "$log"
  python3 "$here/torch_rvm.py" --official "$official" --weights "$weights" \
    --frames "$frames_file" --width $w --height $h --ratio "$ratio" --warmup "$warmup" \
    --timed "$timed" --threads "$threads" --variant "$variant" "${cmp[@]}" | tee -a "$log"
  if [ "$jit" = 1 ]; then
    python3 "$here/torch_rvm.py" --official "$official" --weights "$weights" \
      --frames "$frames_file" --width $w --height $h --ratio "$ratio" --warmup "$warmup" \
      --timed "$timed" --threads "$threads" --variant "$variant" --jit | tee -a "$log"
  fi
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
python3 "$root/benchmarks/common/summarize.py" "$log" "$tag" fps higher | tee -a "$log.summary"
echo "# log: $log"
