#!/usr/bin/env bash
# The whole GPU verification in one device run (docs/gpu.md, issue 10 section 3):
#   env       nvidia-smi, nvcc, PyTorch, where cuDNN / cuBLASLt come from
#   build     engine + CUDA backend + GPU tests + benchmarks on the device (DM_WITH_PIPELINE=OFF,
#             Release, sm_90 + PTX), OpenBLAS/cJSON from the kit's sysroot
#   libs      every object our binaries load (ldd, and LD_DEBUG=files for dm_selftest and
#             bench_gpu) resolves in the build, the kit's engine/lib, glibc/compiler runtime or
#             CUDA, with the environment every later step runs in (run with selftest/ctest/bench)
#   selftest  dm_selftest --backend cuda in float32, float16, bfloat16
#   ctest     ctest -L gpu (CUDA ops + every golden model test on CUDA in the three precisions,
#             goldens from the kit: DM_SHARED=KIT/shared); a skipped test is a failure here
#   bench     benchmarks/gpu/run_gpu_bench.sh: ours vs official PyTorch (eager, autocast,
#             torch.compile), frames/s, peak device memory, agreement; gets the time the others
#             left, and a cut-short run is "PARTIAL" (partial (deadline)), not a failure; the
#             summary's bench_pytorch row says PASS, SKIPPED, PARTIAL or ABSENT (a kit made
#             with --no-official) for the PyTorch side
#   pipeline  with the pipeline kit (the second device call: --kit .devkit-pipe --steps pipeline):
#             the relocated bundle's libraries and Open MPI, depthmatte selftest, one real
#             `depthmatte run` under mpirun with runtime.backend cuda vs cpu (/ranks records,
#             runtime.verify, the guard's counters, compare_h5.py), then the 1080p throughput
#             (RVM + DA-V2, float16, batch 16, verify off: steady frames/s from two runs)
# Every step runs under `timeout` inside one overall deadline and writes one summary line even
# when it fails; logs and the summary go to $OUT (summary.txt, results.txt, logs.tar.gz).
# Time: each step has a guaranteed share and a cap (budget below); a step may use time others
# left, but never the shares of the steps after it, so build, selftest and ctest keep theirs
# and bench gets the remainder. The shares of the steps that run must fit the deadline (else
# they are scaled down, with a warning).
#
#   tests/gpu/device_check.sh [--dry-run] [--kit DIR] [--out DIR] [--deadline S] [--steps LIST]
#
# --dry-run  runs every step that needs no GPU, on any machine (CTest test devcheck_dry_run):
#            both kits' creation and size checks (prepare_device_check.sh, fast xz), the device
#            build with the same flags, argument handling of the GPU programs, `ctest -L gpu`
#            (every test must skip with 77 here), the benchmarks at tiny sizes on the CPU
#            (PyTorch side SKIPPED where torch is absent), and the pipeline step from the unpacked
#            bundle (cpu and emulated runs; cuda must fail with one "no GPU" line; the 1080p
#            throughput job at 1+2 frames per input on the emulated backend), the libs check,
#            and one golden test with DM_SHARED as the ctest step sets it and the real
#            ../shared hidden (a private mount namespace): it must not skip. Exit 0 only if
#            each of those passed.
# --kit      a kit made by prepare_device_check.sh: .devkit (default) for the engine steps,
#            .devkit-pipe for the pipeline step; --dry-run makes DIR and DIR-pipe
# --out      results folder (default $OUT, else build-device/out)
# --deadline overall seconds for all steps (default 390: the first device call's timeout_s is
#            440; 1100 for --dry-run)
# --steps    comma list of steps to run (default env,build,selftest,ctest,bench,pipeline; libs
#            runs whenever selftest, ctest or bench do)
# Exit: 0 every step PASS, SKIPPED, PARTIAL (bench/pipeline throughput cut by the deadline) or
# ABSENT (PyTorch side of a --no-official kit); 1 a step failed; 2 usage error.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo" || exit 1
dry=0
kit=$repo/.devkit
out=${OUT:-}
deadline=""
steps=env,build,selftest,ctest,bench,pipeline
usage() {
  sed -n 's/^#   \(tests\/gpu\/device_check.sh .*\)/  \1/p' "${BASH_SOURCE[0]}" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry=1; shift ;;
    --kit) [ $# -ge 2 ] || usage; kit=$(realpath -m "$2"); shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$(realpath -m "$2"); shift 2 ;;
    --deadline) [ $# -ge 2 ] || usage; deadline=$2; shift 2 ;;
    --steps) [ $# -ge 2 ] || usage; steps=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "device_check: unknown option $1" >&2; usage ;;
  esac
done
# the pipeline kit: the kit itself on the device; beside it in a dry run (prepare makes both)
pkit=$kit
[ "$dry" = 1 ] && pkit=$kit-pipe
# the first device call's 440 s minus 50 s for the transfers and the tarball; a dry run on a
# loaded 2-core machine needs longer
[ -n "$deadline" ] || deadline=$([ "$dry" = 1 ] && echo 1100 || echo 390)
[[ $deadline =~ ^[0-9]+$ ]] || { echo "device_check: --deadline needs seconds" >&2; exit 2; }
for s in ${steps//,/ }; do
  case $s in env|build|libs|selftest|ctest|bench|pipeline) ;; *) echo "device_check: unknown step $s" >&2; exit 2 ;; esac
done
# build dirs: $DM_DEVCHECK_WORK (default: the repository; the CTest dry run uses its build dir)
work=${DM_DEVCHECK_WORK:-$repo}
bdir=$work/build-device
[ "$dry" = 1 ] && bdir=$work/build-device-dry
[ -n "$out" ] || out=$bdir/out
mkdir -p "$out"
logs=$(mktemp -d "${TMPDIR:-/tmp}/dm_devcheck.XXXXXX")
summary=$out/summary.txt
: >"$summary"
: >"$out/results.txt"
t_start=$(date +%s)
failed=0
mode=$([ "$dry" = 1 ] && echo dry-run || echo device)
echo "# depthmatte device_check ($mode) $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo ?) host $(hostname)" | tee -a "$summary"

finish() {
  tar -C "$logs" -czf "$out/logs.tar.gz" . 2>/dev/null
  rm -rf "$logs"
}
trap finish EXIT

want_step() {
  case $1 in
    libs) [[ ",$steps," == *",libs,"* ]] || want_step selftest || want_step ctest || want_step bench ;;
    *) [[ ",$steps," == *",$1,"* ]] ;;
  esac
}
left() { echo $((deadline - ($(date +%s) - t_start))); }
# record NAME STATUS SECS NOTE
record() {
  printf '%-22s %-8s %6s  %s\n' "$1" "$2" "$3" "$4" | tee -a "$summary"
  case $2 in PASS | SKIPPED | PARTIAL | ABSENT) ;; *) failed=1 ;; esac
}

# --- time plan ---------------------------------------------------------------------------------
# budget NAME: "SHARE CAP" seconds. SHARE is guaranteed: no earlier step may run into the shares
# of the steps after it. CAP bounds the step itself (a hang). bench has no share and gets what
# the others left (the first call: what build, selftest and ctest did not need); the pipeline
# step (second call) has the share its checks need, its 1080p throughput runs take the rest.
# Device figures (first call, --deadline 390): 10 + 15 + 150 + 10 + 3 x 30 + 110 = 385 s of
# shares; second call (--deadline 170): kit 15 + pipeline 140 = 155 s.
budget() {
  if [ "$dry" = 1 ]; then
    case $1 in
      env) echo 5 30 ;; kit) echo 200 750 ;; build) echo 250 900 ;; libs) echo 5 60 ;;
      selftest_*) echo 5 40 ;; ctest_gpu) echo 60 300 ;; bench) echo 0 300 ;; pipeline) echo 200 500 ;;
    esac
  else
    case $1 in
      env) echo 10 30 ;; kit) echo 15 60 ;; build) echo 150 240 ;; libs) echo 10 30 ;;
      selftest_*) echo 30 60 ;; ctest_gpu) echo 110 180 ;; bench) echo 0 "$deadline" ;;
      pipeline) echo 140 "$deadline" ;;
    esac
  fi
}
# the steps of this run in order, with their shares (the pipeline's only where it will run)
plan=()
want_step env && plan+=(env)
plan+=(kit)
want_step build && plan+=(build)
want_step libs && plan+=(libs)
want_step selftest && plan+=(selftest_float32 selftest_float16 selftest_bfloat16)
want_step ctest && plan+=(ctest_gpu)
want_step bench && plan+=(bench)
# on the device without a pipeline kit (the first call) the pipeline step does not run at all
# (recorded SKIPPED at the end), so it takes no time the bench could otherwise overrun into
pipeline_absent=0
[ "$dry" = 0 ] && [ ! -f "$pkit/pipeline.tar.xz" ] && pipeline_absent=1
want_step pipeline && [ "$pipeline_absent" = 0 ] && plan+=(pipeline)
declare -A share=()
shares=0
for s in "${plan[@]}"; do
  read -r g _ <<<"$(budget "$s")"
  [ "$s" = pipeline ] && [ "$dry" = 1 ] && [ -n "${DM_DRY_NO_PIPELINE:-}" ] && g=0
  share[$s]=$g
  shares=$((shares + g))
done
if [ "$shares" -gt "$deadline" ]; then
  echo "device_check: WARNING: the steps' shares (${shares} s) exceed the ${deadline} s deadline: scaled down" >&2
  total=$shares shares=0
  for s in "${plan[@]}"; do share[$s]=$((share[$s] * deadline / total)) shares=$((shares + share[$s])); done
fi
plan_line="# time plan (guaranteed s):"
for s in "${plan[@]}"; do plan_line="$plan_line ${s}=${share[$s]}"; done
echo "$plan_line; sum $shares of the ${deadline} s deadline (bench: what is left)" | tee -a "$summary"
printf '%-22s %-8s %6s  %s\n' step status secs note | tee -a "$summary"
# reserved_after NAME: the shares of the steps after NAME
reserved_after() {
  local s seen=0 r=0
  for s in "${plan[@]}"; do
    [ "$seen" = 1 ] && r=$((r + share[$s]))
    [ "$s" = "$1" ] && seen=1
  done
  echo "$r"
}

# run_step NAME CMD...: runs CMD with a timeout of min(CAP, time left - the later steps' shares),
# log in $logs/NAME.log; the last line of the log that starts with "NOTE " becomes the summary
# note. The step's own end (epoch seconds) is DM_STEP_END in its environment. bench and
# pipeline may exit 3 ("partial (deadline)": the figures so far are kept), and a bench killed at
# its limit is partial too: PARTIAL, not a failure.
run_step() {
  local name=$1 cap
  shift
  read -r _ cap <<<"$(budget "$name")"
  local t=$(($(left) - $(reserved_after "$name")))
  [ "$t" -gt "$cap" ] && t=$cap
  if [ "$t" -le 5 ]; then
    if [ "$name" = bench ]; then
      record "$name" PARTIAL 0 "partial (deadline): no time left of the ${deadline}s deadline"
      return 3
    fi
    record "$name" TIMEOUT 0 "no time left of the ${deadline}s deadline"
    return 1
  fi
  local t0=$(date +%s) rc
  # a step is a shell function: run it in a child bash (exported below) so timeout can kill it
  DM_STEP_END=$((t0 + t)) timeout -k 10 "$t" bash -c '"$@"' step "$@" >"$logs/$name.log" 2>&1
  rc=$?
  local dt=$(($(date +%s) - t0))
  local note
  note=$(grep '^NOTE ' "$logs/$name.log" | tail -1 | cut -c6-)
  case $rc:$name in
    0:*) record "$name" PASS "$dt" "$note" ;;
    77:*) record "$name" SKIPPED "$dt" "${note:-skipped}" ;;
    3:bench | 3:pipeline) record "$name" PARTIAL "$dt" "${note:-partial (deadline)}" ;;
    124:bench | 137:bench) record "$name" PARTIAL "$dt" "partial (deadline): killed after ${t}s; $(grep -c '^RESULT ' "$logs/$name.log") RESULT lines kept" ;;
    124:* | 137:*) record "$name" TIMEOUT "$dt" "killed after ${t}s; ${note}" ;;
    *) record "$name" FAIL "$dt" "exit $rc; ${note:-see $name.log}" ;;
  esac
  grep -h '^RESULT \|^COMPARE ' "$logs/$name.log" >>"$out/results.txt"
  return $rc
}

# --- environment ---------------------------------------------------------------------------
py=python3
site=$($py -c 'import sys, sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
cudnn_root=""
if [ "$dry" = 0 ]; then
  cudnn_root=$($py -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)
  [ -f "$cudnn_root/include/cudnn.h" ] || cudnn_root=""
  # cuBLASLt / cudart / cuDNN at run time: the toolkit's, then the PyTorch wheels'
  extra=$(find "$site/nvidia" -name 'lib*.so*' \( -name 'libcudnn*' -o -name 'libcublas*' -o -name 'libcudart*' \) 2>/dev/null |
    xargs -r -n1 dirname | sort -u | tr '\n' ':')
  export LD_LIBRARY_PATH="/usr/local/cuda/lib64:${extra}${LD_LIBRARY_PATH:-}"
fi
cuda_ld=${LD_LIBRARY_PATH:-} # the pipeline step's CUDA libraries (device); none in a dry run
[ "$dry" = 1 ] && cuda_ld=""
# The kit's engine libraries for every step that runs our binaries (build, libs, selftest, ctest,
# bench), not only the build: the binaries' RUNPATH finds the kit's libopenblas.so.0, but not
# its own dependencies (libgfortran.so.5, libquadmath.so.0: RUNPATH does not apply to indirect
# dependencies, and the device has no Fortran runtime), which only LD_LIBRARY_PATH reaches.
# The libs step checks this with the same environment (ldd + LD_DEBUG).
engine_lib=$bdir/kit/engine/lib
export LD_LIBRARY_PATH="$engine_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# a toolkit without cuBLAS (nvcc only): link the PyTorch wheel's libcublasLt.so.13 instead
blaslt=""
if [ "$dry" = 0 ] && ! ls /usr/local/cuda/lib64/libcublasLt.so* >/dev/null 2>&1; then
  blaslt=$(find "$site/nvidia" -name 'libcublasLt.so*' 2>/dev/null | sort | head -1)
fi
export PATH="/usr/local/cuda/bin:$PATH"

step_env() {
  echo "date $(date -u +%FT%TZ)"
  uname -a
  nproc
  if [ "$dry" = 1 ]; then
    echo "dry run: no GPU needed"
  else
    nvidia-smi || return 1
    nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
  fi
  command -v nvcc && nvcc --version | tail -2
  cmake --version | head -1
  $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
  echo "cudnn_root=${cudnn_root:-<system>}"
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  echo "kit: $(cat "$kit/manifest.txt" 2>/dev/null | tr '\n' ';')"
  echo "NOTE $( [ "$dry" = 1 ] && echo "no GPU (dry run)" || nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1), $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/nvcc \1/p')"
}

# --- kit -------------------------------------------------------------------------------------
step_kit() {
  local noofficial=""
  if [ "$dry" = 1 ]; then
    # A kit without the official code must be asked for: prepare fails naming what to fetch.
    local tk
    tk=$(mktemp -d "${TMPDIR:-/tmp}/dm_devcheck_kit.XXXXXX")
    bash "$repo/tests/gpu/prepare_device_check.sh" --kit "$tk/kit" --no-pipeline \
      --official-git da2="$tk/no-such-mirror" >"$tk/log" 2>&1
    local rc=$? named=0
    cat "$tk/log"
    grep -q 'ERROR: no git mirror of the official code: github:DepthAnything/Depth-Anything-V2' "$tk/log" && named=1
    rm -rf "$tk"
    [ $rc = 1 ] && [ $named = 1 ] ||
      { echo "NOTE prepare_device_check.sh without an official mirror: exit $rc (want 1 naming the repository to fetch)"; return 1; }
    # Where this machine has no mirrors (CI) the dry run itself goes on with --no-official and
    # the bench_pytorch row must then say ABSENT.
    bash "$repo/tests/gpu/prepare_device_check.sh" --check-official || noofficial=--no-official
    [ -n "$noofficial" ] && echo "dry run: no mirrors of the official code here: kit made with --no-official (bench_pytorch must say ABSENT)"
    # same script as for a real call, fast compression (size figure slightly above xz -9)
    bash "$repo/tests/gpu/prepare_device_check.sh" --kit "$kit" --pipe-kit "$pkit" \
      --build "$work/build-devcheck" --xz -0 ${DM_DRY_NO_PIPELINE:+--no-pipeline} $noofficial || return 1
  fi
  local s note=""
  for s in ${steps//,/ }; do
    case $s in
      env | pipeline) ;;
      *) [ -f "$kit/engine.tar.xz" ] || { echo "NOTE no engine kit at $kit (step $s needs it): run tests/gpu/prepare_device_check.sh first"; return 1; } ;;
    esac
  done
  rm -rf "$bdir/kit" "$bdir/pipe" && mkdir -p "$bdir/kit" "$bdir/pipe"
  if [ -f "$kit/engine.tar.xz" ]; then
    tar -C "$bdir/kit" -xJf "$kit/engine.tar.xz" || return 1
    note="engine kit $(sed -n 's/^total_bytes \([0-9]*\).*/\1/p' "$kit/manifest.txt" | awk '{printf "%.1f MiB", $1/1048576}')"
  fi
  if [ -f "$pkit/pipeline.tar.xz" ]; then
    tar -C "$bdir/pipe" -xJf "$pkit/pipeline.tar.xz" || return 1
    note="${note:+$note, }pipeline kit $(sed -n 's/^total_bytes \([0-9]*\).*/\1/p' "$pkit/manifest.txt" | awk '{printf "%.1f MiB", $1/1048576}')"
  fi
  [ -n "$note" ] || { echo "NOTE no kit at $kit: run tests/gpu/prepare_device_check.sh first"; return 1; }
  grep -q '^official_.* absent' "$kit/manifest.txt" 2>/dev/null && note="$note; official PyTorch code ABSENT (--no-official)"
  echo "NOTE $note (each with the tree; limit 64 MiB per call)"
}

# --- build -----------------------------------------------------------------------------------
step_build() {
  local cuda=ON
  if ! command -v nvcc >/dev/null; then
    [ "$dry" = 1 ] || { echo "NOTE nvcc not found"; return 1; }
    cuda=OFF
    echo "dry run without nvcc: DM_WITH_CUDA=OFF (the GPU tests then skip as 'no CUDA backend')"
  fi
  export PKG_CONFIG_PATH="$engine_lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export PATH="$bdir/kit/engine/bin:$PATH" # the kit's pkg-config, also where the device has one
  pkg-config --modversion openblas libcjson || return 1
  local gen=Ninja
  command -v ninja >/dev/null || gen="Unix Makefiles"
  cmake -S "$repo" -B "$bdir" -G "$gen" -DCMAKE_BUILD_TYPE=Release -DDM_WITH_PIPELINE=OFF \
    -DDM_WITH_CUDA=$cuda "-DCMAKE_CUDA_ARCHITECTURES=90-real;90-virtual" \
    ${cudnn_root:+"-DCUDNN_ROOT=$cudnn_root"} ${blaslt:+"-DCUDA_cublasLt_LIBRARY=$blaslt"} || return 1
  local jobs=$(nproc)
  [ -n "$blaslt" ] && echo "cuBLASLt: $blaslt"
  [ "$dry" = 1 ] && jobs=2
  cmake --build "$bdir" -j "$jobs" || return 1
  local extra=()
  for t in bench_gpu dm_selftest; do
    cmake --build "$bdir" --target help 2>/dev/null | grep -qE "(^| )$t(:| |$)" && extra+=("$t")
  done
  [ ${#extra[@]} -gt 0 ] && { cmake --build "$bdir" -j "$jobs" --target "${extra[@]}" || return 1; }
  echo "NOTE built: engine$( [ $cuda = ON ] && echo ' + CUDA') + tests ${extra[*]}"
}

# --- libs: what our binaries load, in the environment of the steps that run them ---------------
# ldd of every program the later steps run (dm_selftest, bench_gpu, dm_make_recipe_weights and
# the executables of `ctest -L gpu`) and LD_DEBUG=files of dm_selftest and bench_gpu (started
# with a usage error: they load all their libraries and exit 2, no GPU needed): each object
# from this build dir (the kit's engine/lib is under it), glibc / the compiler runtime or CUDA
# (tests/gpu/bundle_common.sh's lists) and nothing else: e.g. libgfortran from /usr/lib is what
# a machine without gfortran (the device) would not find. Same check in the dry run.
step_libs() {
  . "$repo/tests/gpu/bundle_common.sh"
  local bins=() f
  for f in "$bdir/dm_selftest" "$bdir/benchmarks/bench_gpu" "$bdir/tests/dm_make_recipe_weights" \
    $(ctest --test-dir "$bdir" -L gpu --show-only=json-v1 2>/dev/null | $py -c '
import json, sys
print("\n".join(sorted({t["command"][0] for t in json.load(sys.stdin)["tests"] if t.get("command")})))'); do
    [ -f "$f" ] && [ -x "$f" ] && bins+=("$f")
  done
  [ ${#bins[@]} -gt 4 ] || { echo "NOTE only ${#bins[@]} programs found in $bdir (did the build step pass?)"; return 1; }
  printf '%s\n' "${bins[@]}"
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  local deps missing outside
  deps=$(ldd "${bins[@]}" 2>&1)
  missing=$(echo "$deps" | awk '$2 == "=>" && $3 == "not" {print $1}' | sort -u)
  outside=$(echo "$deps" | awk -v b="$bdir/" '$2 == "=>" && $3 ~ /^\// && index($3, b) != 1 {print $3}' |
    sort -u | grep -v -E "$dm_bundle_system_re" | grep -v -E "$dm_bundle_cuda_re" || true)
  rm -rf "$logs/ld" && mkdir -p "$logs/ld"
  local b n
  for b in "$bdir/dm_selftest" "$bdir/benchmarks/bench_gpu"; do
    [ -x "$b" ] || continue
    n=$(basename "$b")
    # exit 2 (usage) expected; only what was loaded counts here
    LD_DEBUG=files LD_DEBUG_OUTPUT="$logs/ld/$n" "$b" --precision nonsense >/dev/null 2>&1
  done
  local inits
  inits=$(cat "$logs/ld"/* 2>/dev/null | sed -n 's/.*calling init: \([^ ]*\).*/\1/p' | sort -u)
  [ -n "$inits" ] || { echo "NOTE LD_DEBUG=files recorded nothing"; return 1; }
  outside=$(printf '%s\n%s\n' "$outside" "$(echo "$inits" | grep -v "^$bdir/" |
    grep -v -E "$dm_bundle_system_re" | grep -v -E "$dm_bundle_cuda_re")" | grep . | sort -u || true)
  echo "${#bins[@]} programs; loaded at start by dm_selftest/bench_gpu: $(echo "$inits" | grep -c "^$engine_lib/") objects from the kit, $(echo "$inits" | grep -vc "^$bdir/") from the system (glibc, compiler runtime, CUDA)"
  echo "$inits" | grep -E 'openblas|gfortran|quadmath|cjson' | sed 's/^/  /'
  if [ -n "$missing" ] || [ -n "$outside" ]; then
    echo "not found: $missing"
    echo "outside the build, the kit, glibc/compiler runtime and CUDA: $outside"
    echo "NOTE our programs would miss or load from elsewhere: $(echo "$missing $outside" | tr -s ' \n' ' ' | cut -c1-200)"
    return 1
  fi
  echo "NOTE ${#bins[@]} programs: every library from the build/kit, glibc/compiler runtime or CUDA"
}

# --- selftest ---------------------------------------------------------------------------------
step_selftest() {
  local p=$1 bin=$bdir/dm_selftest
  if [ ! -x "$bin" ]; then
    echo "NOTE dm_selftest not in this tree yet (target missing)"
    [ "$dry" = 1 ] && return 77
    return 1
  fi
  if [ "$dry" = 1 ]; then
    # argument handling only: a bad precision is a usage error (2), and without a GPU
    # --backend cuda must answer "no device" (2), not crash or pass
    "$bin" --backend cuda --precision nonsense; [ $? = 2 ] || { echo "NOTE bad --precision not rejected with 2"; return 1; }
    "$bin" --backend cuda --precision "$p"; local rc=$?
    [ $rc = 2 ] || { echo "NOTE --backend cuda without a GPU gave $rc, want 2"; return 1; }
    echo "NOTE usage errors and 'no device' answered with exit 2"
    return 0
  fi
  "$bin" --backend cuda --precision "$p" >"$logs/selftest_$p.table" 2>&1
  local rc=$?
  cat "$logs/selftest_$p.table"
  echo "NOTE exit $rc, $(grep -c PASS "$logs/selftest_$p.table") PASS / $(grep -c FAIL "$logs/selftest_$p.table") FAIL lines"
  return $rc
}

# --- ctest -L gpu -------------------------------------------------------------------------------
step_ctest() {
  local j=4
  [ "$dry" = 1 ] && j=2
  ctest --test-dir "$bdir" -L gpu -j "$j" --no-tests=error --output-on-failure
}
# The golden tests find their files through DM_SHARED (exported for every step: KIT/shared),
# else DM_SOURCE_DIR/../shared, which does not travel to the device. So that a missing or wrong
# DM_SHARED cannot hide behind the development machine's ../shared, run one golden test (RVM on
# the CPU, ~5 s) in the ctest step's environment with ../shared hidden behind an empty folder in
# a private mount namespace (unshare -m as root, else unshare -rm): it must pass, not skip.
golden_from_kit() {
  local bin=$bdir/tests/test_rvm_golden fb empty log=$logs/golden_from_kit.log rc
  fb=$(realpath -m "$repo/../shared")
  [ -x "$bin" ] || { echo "golden_from_kit: $bin missing"; return 1; }
  [ -f "${DM_SHARED:-}/golden/rvm_mbv3/sequence.safetensors" ] ||
    { echo "golden_from_kit: DM_SHARED=${DM_SHARED:-<unset>} is not the kit's shared/ (golden/rvm_mbv3 missing)"; return 1; }
  empty=$(mktemp -d "${TMPDIR:-/tmp}/dm_noshared.XXXXXX")
  if [ -d "$fb" ]; then
    local u hidden=0
    for u in "unshare -m" "unshare -rm"; do
      # shellcheck disable=SC2016
      $u sh -c 'mount --bind "$1" "$2" && [ ! -e "$2/golden" ] && echo "hidden: $2" && shift 2 &&
        exec "$@"' sh "$empty" "$fb" "$bin" >"$log" 2>&1
      rc=$?
      grep -q "^hidden: $fb\$" "$log" && { hidden=1; break; }
    done
    [ $hidden = 1 ] || { cat "$log"; echo "golden_from_kit: could not hide $fb (unshare -m / -rm + mount --bind)"; rmdir "$empty"; return 1; }
  else
    "$bin" >"$log" 2>&1
    rc=$?
  fi
  rmdir "$empty"
  tail -3 "$log"
  if grep -q 'SKIPPED' "$log" || [ $rc != 0 ]; then
    echo "golden_from_kit: test_rvm_golden with DM_SHARED=$DM_SHARED and $fb hidden: exit $rc$(grep -q SKIPPED "$log" && echo ', SKIPPED')"
    return 1
  fi
  echo "golden_from_kit: test_rvm_golden PASS from DM_SHARED=$DM_SHARED ($fb hidden)"
}
step_ctest_wrap() {
  step_ctest >"$logs/ctest.inner" 2>&1
  local rc=$?
  cat "$logs/ctest.inner"
  local total pass skip
  total=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#' "$logs/ctest.inner")
  pass=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#.* Passed' "$logs/ctest.inner")
  skip=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#.*Skipped' "$logs/ctest.inner")
  if [ "$dry" = 1 ]; then
    # without a GPU every gpu test must skip loudly (77) and none may fail
    local ok=0 golden
    [ "$rc" = 0 ] && [ "$total" -gt 0 ] && [ "$skip" = "$total" ] && ok=1
    golden_from_kit; local grc=$?
    golden=$([ $grc = 0 ] && echo "a golden test reads DM_SHARED=kit/shared with ../shared hidden" || echo "golden test from the kit FAILED")
    echo "NOTE $total gpu tests, $skip skipped (no GPU), $pass passed; $golden"
    [ $ok = 1 ] && [ $grc = 0 ]
    return
  fi
  echo "NOTE $pass/$total passed, $skip skipped"
  [ "$rc" = 0 ] && [ "$skip" = 0 ] && [ "$total" -gt 0 ]
}

# --- benchmarks ------------------------------------------------------------------------------
# Its own work folder under the build dir (weights, dumps, log); it stops starting programs 20 s
# before the step's end (DM_STEP_END; room for the kill, the pipe's last writers and the
# summary) and then exits 3 with the figures so far summarized.
step_bench() {
  rm -rf "$bdir/bench"
  local args=(--build "$bdir" --official "$kit/official" --shared "$kit/shared" --work "$bdir/bench"
    --until $((DM_STEP_END - 20)))
  [ "$dry" = 1 ] && args+=(--tiny)
  bash "$repo/benchmarks/gpu/run_gpu_bench.sh" "${args[@]}"
}
# the PyTorch side of the bench step as its own summary row (run_gpu_bench.sh's TORCH_SIDE line)
record_torch_side() {
  local line st note
  line=$(grep '^TORCH_SIDE ' "$logs/bench.log" 2>/dev/null | tail -1)
  st=$(echo "$line" | awk '{print $2}')
  note=$(echo "$line" | cut -d' ' -f3-)
  case $st in
    PASS | SKIPPED | PARTIAL | ABSENT) record bench_pytorch "$st" 0 "$note" ;;
    *) if [ "$1" = 3 ] || [ "$1" = 124 ] || [ "$1" = 137 ]; then
         record bench_pytorch PARTIAL 0 "partial (deadline): bench cut before its summary"
       else
         record bench_pytorch FAIL 0 "bench wrote no TORCH_SIDE line (exit $1)"
       fi ;;
  esac
}

# --- pipeline: the relocated bundle, depthmatte selftest, mpirun run cuda vs cpu ----------------
# The second device call (docs/gpu.md "The prepared device check"): depthmatte built on the development
# machine with CUDA, every library it loads and the Open MPI runtime, all from the unpacked
# bundle ($bdir/pipe/pipeline: nothing of MPI/HDF5/FFmpeg is installed on the device). The dry
# run runs the same steps from the same unpacked bundle with the same mpirun invocation: a cpu
# reference, an emulated-device run in its place of the cuda one (device rules, runtime.verify,
# the /ranks records), and the cuda run, which must fail with one clear "no GPU" line.
# pl_job NAME BACKEND FRAMES [INPUT_SIZE]: writes $w/job_NAME.yaml (output $w/out_NAME.h5)
pl_job() {
  cat >"$w/job_$1.yaml" <<EOF
inputs:
  - $pkit/shared/videos/05_default_juggle.mp4
max_frames: $3
output:
  path: $w/out_$1.h5
  overwrite: true
matting:
  weights: $pkit/shared/models/rvm_mobilenetv3.safetensors
depth:
  model: da2_vits
  weights: $w/da2.safetensors${4:+
  input_size: $4}
runtime:
  backend: $2
  precision: float32
  verify: first_frame
EOF
}
# pl_run NAME [TIMEOUT_S]: runs job NAME under the bundle's mpirun; log $w/run_NAME.log (echoed)
pl_run() {
  local t0 rc
  t0=$(date +%s.%N)
  ${2:+timeout -k 5 "$2"} "${mpirun[@]}" "$p/bin/depthmatte" run "$w/job_$1.yaml" >"$w/run_$1.log" 2>&1
  rc=$?
  sed "s/^/[$1] /" "$w/run_$1.log"
  echo "RESULT e2e job=$1 exit=$rc seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') summary='$(grep -m1 '^rank 0 device:' "$w/run_$1.log")'"
  return $rc
}
# The 1080p throughput (issue: "decode -> depth + matte -> HDF5 at 1080p: >= 300 frames/s per
# H200"): the kit's juggle_1080p.mp4 (160 frames, 1920x1080 H.264) listed $reps times, RVM +
# DA-V2 (input 518: 518x924), the production settings float16 + batch_size 16, verify off,
# alpha (uint8) + depth (float16) into HDF5, one rank. Two runs that differ only in max_frames
# (A frames per input, then B): steady frames/s = reps x (B - A) / (total_s(B) - total_s(A))
# from rank 0's /ranks summary row (total_s counts from job start: set-up, model loads, cuDNN
# plans and CUDA Graph captures are in both and cancel), beside the whole run's frames/s.
# pl_tput_job NAME BACKEND FRAMES_PER_INPUT REPS [INPUT_SIZE]
pl_tput_job() {
  {
    echo "inputs:"
    local i
    for ((i = 0; i < $4; i++)); do # one clip under several names (a path may be listed once)
      ln -sfn "$pkit/shared/videos/juggle_1080p.mp4" "$w/juggle_1080p_$i.mp4"
      echo "  - $w/juggle_1080p_$i.mp4"
    done
    cat <<EOF
max_frames: $3
output:
  path: $w/out_$1.h5
  overwrite: true
matting:
  weights: $pkit/shared/models/rvm_mobilenetv3.safetensors
depth:
  model: da2_vits
  weights: $w/da2.safetensors${5:+
  input_size: $5}
runtime:
  backend: $2
  precision: float16
  batch_size: 16
  verify: off
EOF
  } >"$w/job_$1.yaml"
}
# pl_total_s NAME [COLUMN]: a column of rank 0's row of the run's summary table (rank host
# frames decode_s infer_s write_s wait_s total_s frames/s; default 8 = total_s)
pl_total_s() { awk -v c="${2:-8}" '$1 == "0" && NF == 9 && $3 ~ /^[0-9]+$/ {print $c; exit}' "$w/run_$1.log"; }
# pl_throughput BACKEND A B REPS [INPUT_SIZE]: prints RESULT e2e_1080p and one "TPUT ..." line
# for the step's note; 0 done, 3 cut by the step's deadline (DM_STEP_END less 20 s for the checks
# after it), 1 a run failed
pl_throughput() {
  local dev=$1 a=$2 b=$3 reps=$4 size=${5:-} j t
  [ -f "$pkit/shared/videos/juggle_1080p.mp4" ] || { echo "TPUT no 1080p clip in $pkit (prepare makes it)"; return 1; }
  pl_tput_job tput_a "$dev" "$a" "$reps" $size
  pl_tput_job tput_b "$dev" "$b" "$reps" $size
  for j in tput_a tput_b; do
    t=$((DM_STEP_END - 20 - $(date +%s)))
    if [ "$t" -le 10 ]; then
      echo "RESULT e2e_1080p partial (deadline): $j not started"
      echo "TPUT partial (deadline): $j not started"
      return 3
    fi
    pl_run "$j" "$t"
    case $? in
      0) ;;
      124 | 137) echo "RESULT e2e_1080p partial (deadline): $j cut after ${t}s"; echo "TPUT partial (deadline): $j cut after ${t}s"; return 3 ;;
      *) echo "TPUT $j failed"; return 1 ;;
    esac
    rm -f "$w/out_$j.h5" # 6 MB per frame (alpha uint8 + depth float16 at 1920x1080)
  done
  local fa fb ta tb
  fa=$(pl_total_s tput_a 3) fb=$(pl_total_s tput_b 3) ta=$(pl_total_s tput_a) tb=$(pl_total_s tput_b)
  if [ "$fa" != $((reps * a)) ] || [ "$fb" != $((reps * b)) ]; then
    echo "TPUT frames written $fa / $fb, want $((reps * a)) / $((reps * b))"
    return 1
  fi
  local steady whole
  steady=$(awk -v f=$((fb - fa)) -v a="$ta" -v b="$tb" 'BEGIN { if (b > a) printf "%.1f", f / (b - a); else print "n/a" }')
  whole=$(awk -v f="$fb" -v b="$tb" 'BEGIN { printf "%.1f", (b > 0 ? f / b : 0) }')
  echo "RESULT e2e_1080p backend=$dev precision=float16 batch=16 size=1920x1080 ranks=1 inputs=$reps frames_a=$fa frames_b=$fb total_s_a=$ta total_s_b=$tb steady_fps=$steady whole_run_fps=$whole decode_s=$(pl_total_s tput_b 4) infer_s=$(pl_total_s tput_b 5) write_s=$(pl_total_s tput_b 6) wait_s=$(pl_total_s tput_b 7) target_fps=300 peak_device_mib=$(grep -m1 '^rank 0 device:' "$w/run_tput_b.log" | sed -n 's/.*, peak \([0-9]*\) MiB.*/\1/p')"
  echo "TPUT 1080p $steady frames/s steady ($whole whole run, $fb frames; target 300)"
}
step_pipeline() {
  p=$bdir/pipe/pipeline
  if [ ! -x "$p/bin/depthmatte" ]; then
    if [ "$dry" = 1 ] && [ -n "${DM_DRY_NO_PIPELINE:-}" ]; then
      echo "NOTE SKIPPED: DM_DRY_NO_PIPELINE set, no pipeline kit made"
      return 77
    fi
    if [ -f "$kit/engine.tar.xz" ] && [ "$dry" = 0 ]; then
      echo "NOTE SKIPPED: runs in the second device call (--kit .devkit-pipe --steps pipeline, docs/gpu.md)"
      return 77
    fi
    echo "NOTE no pipeline bundle in $pkit: run tests/gpu/prepare_device_check.sh (it makes .devkit-pipe)"
    return 1
  fi
  . "$repo/tests/gpu/bundle_common.sh"
  cat "$pkit/manifest.txt"
  # Only the bundle, plus the device's CUDA libraries (toolkit, PyTorch wheels): nothing of the
  # development machine's MPI/HDF5/FFmpeg may be found through LD_LIBRARY_PATH here.
  export LD_LIBRARY_PATH="$p/lib${cuda_ld:+:$cuda_ld}"
  export OPAL_PREFIX=$p/ompi OPAL_PKGLIBDIR=$p/ompi/lib OPAL_PKGDATADIR=$p/ompi/share/openmpi
  export OPAL_SYSCONFDIR=$p/ompi/etc OMPI_MCA_mca_base_component_path=$p/ompi/lib
  export PMIX_PREFIX=$p/ompi PMIX_PKGLIBDIR=$p/ompi/pmix PMIX_MCA_mca_base_component_path=$p/ompi/pmix
  export HWLOC_PLUGINS_PATH=$p/hwloc OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  mkdir -p "$p/ompi/etc" "$p/hwloc" # hwloc: no plugins (the device has none to find)
  # --bind-to none: Open MPI binds 1-2 ranks to one core by default, and OpenMP would then run
  # the CPU reference on one thread of the device's 16 cores
  mpirun=("$p/bin/mpirun" --oversubscribe --bind-to none -np 1)
  local bins=("$p"/bin/*) bad missing
  bad=$(dm_bundle_outside "$p/lib" "${bins[@]}" "$p"/ompi/lib/*.so "$p"/ompi/pmix/*.so)
  missing=$(ldd "${bins[@]}" 2>/dev/null | grep 'not found' | sort -u)
  if [ -n "$bad" ] || [ -n "$missing" ]; then
    echo "outside the bundle: $bad"
    echo "not found: $missing"
    echo "NOTE the bundle's programs would load libraries from elsewhere or miss some: $(echo "$bad $missing" | tr -s ' \n' ' ' | cut -c1-200)"
    return 1
  fi
  # Relocation: every object that mpirun and depthmatte load at run time (dlopen'ed Open MPI,
  # PMIx and hwloc components included) comes from the bundle, the system's glibc/compiler
  # runtime or CUDA (LD_DEBUG=files: one "calling init" line per loaded object).
  rm -rf "$bdir/pipe/ld" && mkdir -p "$bdir/pipe/ld"
  LD_DEBUG=files LD_DEBUG_OUTPUT=$bdir/pipe/ld/trace "${mpirun[@]}" "$p/bin/depthmatte" --version ||
    { echo "NOTE mpirun/depthmatte from the bundle do not start"; return 1; }
  local inits outside
  inits=$(cat "$bdir/pipe/ld"/trace.* | sed -n 's/.*calling init: \([^ ]*\).*/\1/p' | sort -u)
  outside=$(echo "$inits" | grep -v "^$p/" | grep -v -E "$dm_bundle_system_re" | grep -v -E "$dm_bundle_cuda_re" || true)
  echo "loaded at start: $(echo "$inits" | grep -c "^$p/") objects from the bundle, $(echo "$inits" | grep -vc "^$p/") from the system (glibc, compiler runtime, CUDA)"
  if [ -n "$outside" ]; then
    echo "$outside"
    echo "NOTE relocation broken: loaded from the system: $(echo "$outside" | tr '\n' ' ' | cut -c1-200)"
    return 1
  fi
  # a Python with h5py for the /ranks and output checks (the device's PyTorch env has one)
  local pyh5="" c
  for c in $py python3 /usr/bin/python3; do
    if "$c" -c 'import h5py, numpy' 2>/dev/null; then pyh5=$c; break; fi
  done
  w=$bdir/pipe/e2e
  mkdir -p "$w"
  "$p/bin/dm_make_recipe_weights" "$pkit/shared/golden/da2_vits/recipe.json" "$w/da2.safetensors" ||
    { echo "NOTE dm_make_recipe_weights from the bundle failed"; return 1; }
  # 24 frames: DA-V2's CUDA Graph is captured at frame 2 and replayed from frame 3; the CPU
  # reference of 24 frames at 518x924 is the longest part of the step (~15-30 s on 16 cores)
  local frames=24 size="" ref=cpu dev=cuda
  if [ "$dry" = 1 ]; then
    # a few frames at a small depth input (2 loaded cores); emulated stands in for cuda
    frames=4 size=70 dev=emulated
  else
    nvidia-smi -L
    "$p/bin/depthmatte" selftest --backend cuda --precision float32 ||
      { echo "NOTE depthmatte selftest --backend cuda (from the bundle) failed"; return 1; }
  fi
  pl_job "$ref" cpu $frames $size
  pl_job "$dev" "$dev" $frames $size
  # the device run first: its /ranks checks stand alone if the CPU reference runs out of time
  pl_run "$dev" || { echo "NOTE depthmatte run ($dev) failed"; return 1; }
  pl_run "$ref" || { echo "NOTE depthmatte run ($ref) failed"; return 1; }
  # the 1080p throughput: 4 x 160 frames vs 4 x 32 on the GPU; the dry run the same job at 1 and
  # 2 frames per input, depth input 70, on the emulated backend (checks the job, not the speed)
  local trc tput
  if [ "$dry" = 1 ]; then
    pl_throughput emulated 1 2 2 70 >"$w/tput.log" 2>&1
  else
    pl_throughput cuda 32 160 4 >"$w/tput.log" 2>&1
  fi
  trc=$?
  cat "$w/tput.log"
  tput=$(grep '^TPUT ' "$w/tput.log" | tail -1 | cut -c6-)
  if [ "$dry" = 1 ]; then
    # no GPU here: selftest and the cuda job must each say so in one line, exit non-zero, and
    # the job must leave no output file
    "$p/bin/depthmatte" selftest --backend cuda --precision float32 >"$w/selftest_cuda.log" 2>&1
    local rc=$?
    cat "$w/selftest_cuda.log"
    [ $rc = 2 ] && [ "$(grep -c -- '--backend cuda: ' "$w/selftest_cuda.log")" = 1 ] ||
      { echo "NOTE depthmatte selftest --backend cuda without a GPU: exit $rc, want 2 and one line"; return 1; }
    pl_job cuda cuda $frames $size
    pl_run cuda && { echo "NOTE runtime.backend: cuda passed without a GPU"; return 1; }
    local n
    n=$(grep -c 'runtime.backend cuda: ' "$w/run_cuda.log")
    [ "$n" = 1 ] || { echo "NOTE runtime.backend: cuda without a GPU: $n 'no GPU' lines, want 1"; return 1; }
    [ ! -e "$w/out_cuda.h5" ] || { echo "NOTE the failed cuda job left $w/out_cuda.h5"; return 1; }
    echo "RESULT e2e job=cuda no-GPU answer: $(grep 'runtime.backend cuda' "$w/run_cuda.log")"
  fi
  if [ -z "$pyh5" ]; then
    if [ "$dry" = 1 ]; then
      echo "SKIPPED: no Python with h5py here: /ranks and the $ref/$dev comparison not checked"
      echo "NOTE bundle relocated and runs ($ref, $dev; cuda refused clearly); h5 checks SKIPPED (no h5py); ${tput:-no 1080p figure}"
      [ $trc = 0 ] || return 1
      return 0
    fi
    echo "NOTE no Python with h5py on the device: /ranks and the comparison cannot be checked"
    return 1
  fi
  local fail=0
  "$pyh5" "$repo/tests/gpu/ranks_h5.py" "$w/out_$dev.h5" --backend "$dev" --frames $frames --models 2 || fail=1
  "$pyh5" "$repo/tests/gpu/ranks_h5.py" "$w/out_$ref.h5" --backend cpu --frames $frames || fail=1
  "$pyh5" "$repo/tests/gpu/compare_h5.py" "$w/out_$ref.h5" "$w/out_$dev.h5" || fail=1
  local verified
  verified=$(grep -m1 '^rank 0 device:' "$w/run_$dev.log" | sed 's/^rank 0 device: //' | cut -c1-120)
  echo "NOTE $dev vs $ref, $frames frames: $( [ $fail = 0 ] && echo PASS || echo FAIL); $verified; ${tput:-no 1080p figure}"
  [ $fail = 0 ] || return 1
  # on the device a throughput cut by the deadline is partial (3), not a failure of the checks
  # above; the dry run's tiny job must finish
  [ "$dry" = 1 ] && [ $trc != 0 ] && return 1
  return $trc
}

# --- run ---------------------------------------------------------------------------------------
export -f step_env step_kit step_build step_libs step_selftest step_ctest golden_from_kit step_ctest_wrap \
  step_bench step_pipeline pl_job pl_run pl_tput_job pl_total_s pl_throughput
export dry kit pkit bdir logs py repo work cudnn_root site out blaslt cuda_ld engine_lib
want_step env && run_step env step_env
run_step kit step_kit || { echo "device_check: no kit, stopping" >&2; exit 1; }
# from here on the goldens are the kit's (../shared does not travel): ctest, bench, golden check
export DM_SHARED=$kit/shared
if want_step build; then
  run_step build step_build || echo "device_check: build failed; later steps will fail" >&2
fi
want_step libs && run_step libs step_libs
if want_step selftest; then
  for p in float32 float16 bfloat16; do run_step "selftest_$p" step_selftest "$p"; done
fi
want_step ctest && run_step ctest_gpu step_ctest_wrap
if want_step bench; then
  run_step bench step_bench
  record_torch_side $?
fi
if want_step pipeline; then
  if [ "$pipeline_absent" = 1 ]; then
    record pipeline SKIPPED 0 "no pipeline kit here ($pkit/pipeline.tar.xz): the second device call runs it"
  else
    run_step pipeline step_pipeline
  fi
fi
echo "# total $(($(date +%s) - t_start)) s of the ${deadline} s deadline; logs: $out/logs.tar.gz" | tee -a "$summary"
cat "$out/results.txt"
echo
cat "$summary"
exit $failed
