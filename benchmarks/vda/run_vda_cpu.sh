#!/usr/bin/env bash
# Runs our Video Depth Anything Small (bench_vda_cpu) and the official PyTorch one
# (torch_vda.py) in one run on the same machine, same recipe weights, same real frames, same
# input_size and thread count, and prints frames/s of both side by side for (a) one 32-frame
# window and (b) the whole video path (push/pop stream vs infer_video_depth), with the peak
# RSS of each process (median over --repeat runs, ours and torch alternating), plus
# max |ours - torch| of the depths on the first repeat (apples to apples).
#
# usage: benchmarks/vda/run_vda_cpu.sh [--build DIR] [--official DIR] [--input-size 518]
#            [--count 54] [--window-runs 1] [--threads T] [--repeat R] [--frames-file F
#            --width W --height H] [--openblas-coretype SkylakeX] [--no-video]
#            [--ref-bin OLD_BENCH]
#   --no-video runs the window part only (both implementations): peak RSS and speed of one
#   32-frame window, about a third of the time of a full run.
#   --ref-bin also runs another bench_vda_cpu (e.g. built from an earlier commit) in every
#   repeat, before ours, reported as impl=ours_ref (before/after in one run).
#   --input-size 280 is a quick check (2.7 min); 518 (the official default) took 13-15 min on
#   2 loaded cores at --repeat 1 (each process: one window + 54 frames = 3 windows).
# needs: a built bench_vda_cpu (see benchmarks/README.md), python3 with torch, torchvision,
#        numpy, safetensors, opencv-python-headless, einops, easydict, tqdm (imported by the
#        official code); ffmpeg (to extract frames); ../shared (DM_SHARED overrides).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build-bench
official=/tmp/official/vda
input_size=518
count=54
window_runs=1
threads=$(nproc)
repeat=1
frames_file=
no_video=()
ref_bin=
w=720; h=720
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --official) official=$2; shift 2 ;;
    --input-size) input_size=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --window-runs) window_runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --openblas-coretype) export OPENBLAS_CORETYPE=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --frames-file) frames_file=$2; shift 2 ;;
    --width) w=$2; shift 2 ;;
    --height) h=$2; shift 2 ;;
    --no-video) no_video=(--no-video); shift ;;
    --ref-bin) ref_bin=$2; shift 2 ;;
    *) echo "run_vda_cpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
shared=${DM_SHARED:-$root/../shared}
recipe=$shared/golden/vda_vits/recipe.json
pe=$shared/golden/vda_vits/pe_buffers.safetensors
video=$shared/videos/05_default_juggle.mp4
bin=$build/benchmarks/bench_vda_cpu
for f in "$bin" "$recipe" "$pe" "$official/video_depth_anything/video_depth.py"; do
  [ -e "$f" ] || { echo "run_vda_cpu.sh: missing $f (see benchmarks/README.md)" >&2; exit 1; }
done
work=${TMPDIR:-/tmp}/dm_bench_vda
mkdir -p "$work"
weights=$work/vda_vits_recipe.safetensors
# Our recipe generator writes the weights once (pe tables from pe_buffers.safetensors); both
# implementations load this file.
[ -s "$weights" ] || "$bin" --recipe "$recipe" --pe "$pe" --write-weights "$weights"
if [ -z "$frames_file" ]; then
  # Real frames: the juggling clip from 1.75 s (the man is in view), centre 720x720 crop so
  # that input_size 518 gives a 518x518 model input (a 16:9 frame would give 518x924, about
  # 2.2x the work, too long for one run on 2 cores). Decoded once with the ffmpeg CLI so that
  # both implementations read identical bytes; both resize 720 -> model size themselves.
  [ -e "$video" ] || { echo "run_vda_cpu.sh: missing $video" >&2; exit 1; }
  frames_file=$work/juggle_${w}x${h}_${count}.rgb
  if [ ! -s "$frames_file" ]; then
    ffmpeg -v error -ss 1.75 -i "$video" -frames:v "$count" -vf crop=${w}:${h} -f rawvideo \
      -pix_fmt rgb24 -y "$frames_file"
  fi
fi

log=$work/run_$(date +%Y%m%d_%H%M%S).log
echo "# run_vda_cpu.sh $(date -u +%FT%TZ) commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src include CMakeLists.txt || echo " + uncommitted changes in src/include")" | tee "$log"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) nproc=$(nproc) threads=$threads input_size=$input_size frames=$frames_file (${w}x${h})" | tee -a "$log"
# OpenBLAS picks its GEMM kernels from the CPU model; an unknown model (e.g. a new Xeon
# under a hypervisor) falls back to generic SSE3 "Prescott" kernels. Our programs re-execute
# themselves with OPENBLAS_CORETYPE then (dm_cpu_tune_blas, as the CLI): log what they use.
echo "# our openblas core: $("$bin" --help | sed -n 's/^blas core: //p') (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} DM_NO_BLAS_REEXEC=${DM_NO_BLAS_REEXEC:-unset})" | tee -a "$log"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
for r in $(seq 1 "$repeat"); do
  dump=()
  cmp=()
  if [ "$r" = 1 ]; then dump=(--dump "$work/ours_$input_size"); cmp=(--compare "$work/ours_$input_size"); fi
  refdump=()
  if [ "$r" = 1 ]; then
    rm -f "$work/ref_$input_size".*.f32 "$work/ours_$input_size".*.f32 # no stale dumps
    refdump=(--dump "$work/ref_$input_size")
  fi
  if [ -n "$ref_bin" ]; then
    OMP_NUM_THREADS=$threads "$ref_bin" --weights "$weights" --frames "$frames_file" \
      --width "$w" --height "$h" --input-size "$input_size" --window-runs "$window_runs" \
      --threads "$threads" "${no_video[@]}" "${refdump[@]}" \
      | sed 's/ impl=ours / impl=ours_ref /' | tee -a "$log"
    echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
  fi
  OMP_NUM_THREADS=$threads "$bin" --weights "$weights" --frames "$frames_file" --width "$w" \
    --height "$h" --input-size "$input_size" --window-runs "$window_runs" \
    --threads "$threads" "${no_video[@]}" "${dump[@]}" | tee -a "$log"
  echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
  if [ -n "$ref_bin" ] && [ "$r" = 1 ]; then
    for part in window video; do
      [ -e "$work/ref_$input_size.$part.f32" ] || continue
      if cmp -s "$work/ref_$input_size.$part.f32" "$work/ours_$input_size.$part.f32"; then
        echo "COMPARE vda ours vs ours_ref $part: bit-identical" | tee -a "$log"
      else
        echo "COMPARE vda ours vs ours_ref $part: DIFFERENT bytes" | tee -a "$log"
      fi
    done
  fi
  python3 "$here/torch_vda.py" --official "$official" --weights "$weights" \
    --frames "$frames_file" --width "$w" --height "$h" --input-size "$input_size" \
    --window-runs "$window_runs" --threads "$threads" "${no_video[@]}" "${cmp[@]}" 2>&1 \
    | grep -v '^xFormers not available' | tee -a "$log"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$log"
python3 "$root/benchmarks/common/summarize.py" "$log" vda fps higher mode | tee "$log.summary"
echo "# log: $log"
