#!/usr/bin/env bash
# Runs bench_vda_stream once: Video Depth Anything Small streaming mode (vda_stream) peak RSS
# for two video lengths and seconds per frame vs the offline path (vda_video), same process,
# same recipe weights and real frames (the juggling clip from 1.75 s, centre 720x720 crop, as
# run_vda_cpu.sh, so input_size 518 gives a 518x518 model input).
#
# usage: benchmarks/vda/run_vda_stream.sh [--build DIR] [--input-size 518] [--count 12]
#            [--short 3] [--threads T] [--no-offline]
#   --count: frames of the long stream (and of the extracted clip); --short: the first
#   length of the memory comparison; the offline part is one 32-frame window.
# needs: a built bench_vda_stream (cmake --build BUILD --target bench_vda_stream), ffmpeg,
#        ../shared (DM_SHARED overrides).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build
input_size=518
count=12
short=3
threads=$(nproc)
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --input-size) input_size=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --short) short=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --no-offline) extra+=(--no-offline); shift ;;
    *) echo "run_vda_stream.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
shared=${DM_SHARED:-$root/../shared}
recipe=$shared/golden/vda_vits/recipe.json
pe=$shared/golden/vda_vits/pe_buffers.safetensors
video=$shared/videos/05_default_juggle.mp4
bin=$build/benchmarks/bench_vda_stream
wbin=$build/benchmarks/bench_vda_cpu
for f in "$bin" "$wbin" "$recipe" "$pe" "$video"; do
  [ -e "$f" ] || { echo "run_vda_stream.sh: missing $f (see benchmarks/README.md)" >&2; exit 1; }
done
work=${TMPDIR:-/tmp}/dm_bench_vda_stream
mkdir -p "$work"
weights=$work/vda_vits_recipe.safetensors
[ -s "$weights" ] || "$wbin" --recipe "$recipe" --pe "$pe" --write-weights "$weights"
n_extract=$(( count > 32 ? count : 32 ))
frames=$work/juggle_720x720_${n_extract}.rgb
[ -s "$frames" ] || ffmpeg -v error -ss 1.75 -i "$video" -frames:v "$n_extract" -vf crop=720:720 \
  -f rawvideo -pix_fmt rgb24 -y "$frames"
log=$work/run_$(date +%Y%m%d_%H%M%S).log
echo "# run_vda_stream.sh $(date -u +%FT%TZ) commit $(git -C "$root" rev-parse --short HEAD) input_size=$input_size frames=$count short=$short threads=$threads" | tee "$log"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
OMP_NUM_THREADS=$threads "$bin" --weights "$weights" --frames "$frames" --width 720 \
  --height 720 --input-size "$input_size" --count "$count" --short "$short" --threads "$threads" \
  "${extra[@]}" | tee -a "$log"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
echo "# log: $log"
