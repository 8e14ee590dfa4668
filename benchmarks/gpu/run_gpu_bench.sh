#!/usr/bin/env bash
# GPU benchmarks, ours vs the official PyTorch code side by side in one run (issue 10 section 4;
# benchmarks/README.md): DA-V2 Small 518x518 at batch 1 and 16 (one batched forward on both
# sides) and 518x924; RVM MobileNetV3
# 1920x1080 at downsample 0.25; VDA Small one 32x518x518 window. For each: ours (bench_gpu) in
# float32 / float16 / bfloat16, PyTorch eager float32, autocast float16 / bfloat16 and
# torch.compile + autocast bfloat16 (torch_gpu.py), on the frames ours dumped; frames/s, device
# memory, agreement (COMPARE lines), and the summary table (common/summarize.py).
#
#   benchmarks/gpu/run_gpu_bench.sh --build DIR --official DIR --shared DIR [--tiny] [--runs N]
#                                   [--work DIR] [--until EPOCH_S]
#
# --build    build dir with bench_gpu and tests/dm_make_recipe_weights (device_check.sh's)
# --official folder with da2/ rvm/ vda/ official code (prepare_device_check.sh exports it)
# --shared   folder with golden/ and models/ (recipes, RVM weights)
# --tiny     dry run on the CPU: tiny sizes, CPU backend, float32 for ours; PyTorch on the CPU
#            where torch is installed (else one SKIPPED line); checks the scripts, not speed
# --work     folder for the weights, dumps and the log (default: a new mktemp -d folder per run)
# --until    wall-clock end (seconds since the epoch): every program runs under `timeout` up to
#            it, and what does not fit is not started; the figures so far are kept and
#            summarized, and the run ends "partial (deadline)" with exit 3
# Last lines: "TORCH_SIDE PASS|SKIPPED|ABSENT|PARTIAL <why>" (the PyTorch comparison: ABSENT when
# the official code is not in --official, i.e. a kit made with --no-official) and "NOTE ...".
# Exit: 0, 1 if a program failed (each failure also prints a FAILED line and the run goes on),
# 3 if the deadline cut the run short (and nothing failed).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="" official="" shared="" tiny=0 runs=10 work="" until=""
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --official) official=$2; shift 2 ;;
    --shared) shared=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --until) until=$2; shift 2 ;;
    --tiny) tiny=1; shift ;;
    *) echo "run_gpu_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$build" ] && [ -n "$shared" ] || { echo "usage: run_gpu_bench.sh --build DIR --official DIR --shared DIR [--tiny]" >&2; exit 2; }
bin=$build/benchmarks/bench_gpu
mk=$build/tests/dm_make_recipe_weights
for f in "$bin" "$mk"; do [ -x "$f" ] || { echo "run_gpu_bench.sh: missing $f" >&2; exit 1; }; done
[ -z "$until" ] || [[ $until =~ ^[0-9]+$ ]] || { echo "run_gpu_bench.sh: --until needs epoch seconds" >&2; exit 2; }
if [ -n "$work" ]; then
  mkdir -p "$work" || exit 1
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/dm_bench_gpu.XXXXXX") || exit 1
fi
log=$work/run_$(date +%Y%m%d_%H%M%S).log
rc=0 cut=0 torch_runs=0 absent=""
"$mk" "$shared/golden/da2_vits/recipe.json" "$work/da2.safetensors" >/dev/null || exit 1
"$mk" "$shared/golden/vda_vits/recipe.json" "$work/vda.safetensors" \
  "$shared/golden/vda_vits/pe_buffers.safetensors" >/dev/null || exit 1
rvmw=$shared/models/rvm_mobilenetv3.safetensors
have_torch=1
echo "# run_gpu_bench.sh $(date -u +%FT%TZ) commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null) tiny=$tiny" | tee "$log"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader | sed 's/^/# gpu: /' | tee -a "$log"

if [ "$tiny" = 1 ]; then
  backend=cpu precisions=float32 tdev=cpu tmodes=float32,bfloat16 warm=0 runs=1
  # name model weights H W batch extra
  cases=("da2_b1 da2 $work/da2.safetensors 14 28 1 --input-size 14"
         "da2_b2 da2 $work/da2.safetensors 14 28 2 --input-size 14"
         "rvm rvm $rvmw 64 96 1 --ratio 0.25"
         "vda vda $work/vda.safetensors 14 14 1 --input-size 14")
else
  backend=cuda precisions="float32 float16 bfloat16" tdev=cuda tmodes=float32,float16,bfloat16 warm=3
  cases=("da2_b1 da2 $work/da2.safetensors 518 518 1 --input-size 518"
         "da2_b16 da2 $work/da2.safetensors 518 518 16 --input-size 518"
         "da2_wide da2 $work/da2.safetensors 518 924 1 --input-size 518"
         "rvm rvm $rvmw 1080 1920 1 --ratio 0.25"
         "vda vda $work/vda.safetensors 518 518 1 --input-size 518")
fi
run() { # logs the command's output; a failure is reported and the run goes on
  local t=""
  if [ -n "$until" ]; then
    t=$((until - $(date +%s)))
    if [ "$t" -le 2 ]; then
      echo "NOT STARTED (deadline): $*" | tee -a "$log"
      cut=1
      return 0
    fi
  fi
  ${t:+timeout -k 5 "$t"} "$@" 2>&1 | tee -a "$log"
  local r=${PIPESTATUS[0]}
  case $r in
    0) ;;
    124 | 137) [ -n "$t" ] && { echo "CUT (deadline, after ${t}s): $*" | tee -a "$log"; cut=1; } ||
      { echo "FAILED ($r): $*" | tee -a "$log"; rc=1; } ;;
    *) echo "FAILED ($r): $*" | tee -a "$log"; rc=1 ;;
  esac
}
# pass 1: ours, every case and precision (also dumps the frames and outputs for PyTorch)
for c in "${cases[@]}"; do
  read -r name model weights h w batch extra <<<"$c"
  r=$runs
  [ "$model" = vda ] && [ "$tiny" = 0 ] && r=3
  for p in $precisions; do
    # shellcheck disable=SC2086
    run "$bin" --model "$model" --weights "$weights" --backend "$backend" --precision "$p" \
      --height "$h" --width "$w" --batch "$batch" --warmup "$warm" --runs "$r" $extra \
      --dump "$work/ours_${name}_$p.safetensors"
  done
done
# pass 2: PyTorch eager / autocast for every case, then pass 3: torch.compile (slow to
# compile: last, so that a time limit cuts it and not the eager figures)
for modes in "$tmodes" compile; do
  [ "$modes" = compile ] && [ "$tiny" = 1 ] && continue
  for c in "${cases[@]}"; do
    read -r name model weights h w batch extra <<<"$c"
    # what the official code of this model imports (the GPU image has all of them)
    mods="torch, safetensors, numpy"
    case $model in rvm) mods="$mods, torchvision" ;; da2) mods="$mods, cv2" ;; vda) mods="$mods, cv2, einops, tqdm" ;; esac
    if [ ! -d "$official/$model" ]; then
      echo "ABSENT: PyTorch side of $name (no official code at $official/$model)" | tee -a "$log"
      [[ " $absent " == *" $model "* ]] || absent="${absent:+$absent }$model"
      continue
    fi
    if ! python3 -c "import $mods" 2>/dev/null; then
      echo "SKIPPED: PyTorch side of $name ($modes; python3 cannot import $mods)" | tee -a "$log"
      have_torch=0
      continue
    fi
    torch_runs=$((torch_runs + 1))
    r=$runs
    [ "$model" = vda ] && [ "$tiny" = 0 ] && r=3
    run python3 "$here/torch_gpu.py" --model "$model" --official "$official/$model" \
      --weights "$weights" --ours "$work/ours_${name}_{precision}.safetensors" --device "$tdev" \
      --modes "$modes" --warmup "$warm" --runs "$r" --ratio 0.25
  done
done
python3 "$here/summarize_gpu.py" "$log" 2>&1 | tee "$log.summary" || true
echo "# log: $log"
ntorch=$(grep -c '^RESULT gpu_.* impl=torch_' "$log")
if [ -n "$absent" ]; then
  side="ABSENT no official code for $absent in $official (kit made with --no-official)"
elif [ "$have_torch" = 0 ]; then
  side="SKIPPED python3 cannot import the official code's modules ($(grep -c '^SKIPPED' "$log") runs)"
elif [ "$cut" = 1 ]; then
  side="PARTIAL $ntorch PyTorch RESULT lines before the deadline"
else
  side="PASS $ntorch PyTorch RESULT lines from $torch_runs runs"
fi
echo "TORCH_SIDE $side"
echo "NOTE $( [ "$cut" = 1 ] && echo "partial (deadline): ")$(grep -c '^RESULT' "$log") RESULT lines, $(grep -c '^COMPARE' "$log") COMPARE lines; PyTorch side ${side%% *}"
[ "$rc" = 0 ] && [ "$cut" = 1 ] && exit 3
exit $rc
