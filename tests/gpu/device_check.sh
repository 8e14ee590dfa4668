#!/usr/bin/env bash
# The whole GPU verification in one device run (docs/gpu.md, issue 10 section 3):
#   env       nvidia-smi, nvcc, PyTorch, where cuDNN / cuBLASLt come from
#   build     engine + CUDA backend + GPU tests + benchmarks on the device (DM_WITH_PIPELINE=OFF,
#             Release, sm_90 + PTX), OpenBLAS/cJSON from the kit's sysroot
#   selftest  dm_selftest --backend cuda in float32, float16, bfloat16
#   ctest     ctest -L gpu (CUDA ops + every golden model test on CUDA in the three precisions);
#             a skipped test is a failure here
#   bench     benchmarks/gpu/run_gpu_bench.sh: ours vs official PyTorch (eager, autocast,
#             torch.compile), frames/s, peak device memory, agreement
#   pipeline  with the pipeline kit (the second device call: --kit .devkit-pipe --steps pipeline):
#             the relocated bundle's libraries and Open MPI, depthmatte selftest, one real
#             `depthmatte run` under mpirun with runtime.backend cuda vs cpu (/ranks records,
#             runtime.verify, the guard's counters, compare_h5.py)
# Every step runs under `timeout` inside one overall deadline and writes one summary line even
# when it fails; logs and the summary go to $OUT (summary.txt, results.txt, logs.tar.gz).
#
#   tests/gpu/device_check.sh [--dry-run] [--kit DIR] [--out DIR] [--deadline S] [--steps LIST]
#
# --dry-run  runs every step that needs no GPU, on any machine (CTest test devcheck_dry_run):
#            both kits' creation and size checks (prepare_device_check.sh, fast xz), the device
#            build with the same flags, argument handling of the GPU programs, `ctest -L gpu`
#            (every test must skip with 77 here), the benchmarks at tiny sizes on the CPU
#            (PyTorch side SKIPPED where torch is absent), and the pipeline step from the unpacked
#            bundle (cpu and emulated runs; cuda must fail with one "no GPU" line). Exit 0 only
#            if each of those passed.
# --kit      a kit made by prepare_device_check.sh: .devkit (default) for the engine steps,
#            .devkit-pipe for the pipeline step; --dry-run makes DIR and DIR-pipe
# --out      results folder (default $OUT, else build-device/out)
# --deadline overall seconds for all steps (default 470: the device call's timeout_s is 540;
#            1100 for --dry-run)
# --steps    comma list of steps to run (default env,build,selftest,ctest,bench,pipeline)
# Exit: 0 all steps passed, 1 a step failed, 2 usage error.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo" || exit 1
dry=0
kit=$repo/.devkit
out=${OUT:-}
deadline=""
steps=env,build,selftest,ctest,bench,pipeline
usage() {
  sed -n '18,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
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
# the device call's 540 s minus margin; a dry run on a loaded 2-core machine needs longer
[ -n "$deadline" ] || deadline=$([ "$dry" = 1 ] && echo 1100 || echo 470)
[[ $deadline =~ ^[0-9]+$ ]] || { echo "device_check: --deadline needs seconds" >&2; exit 2; }
for s in ${steps//,/ }; do
  case $s in env|build|selftest|ctest|bench|pipeline) ;; *) echo "device_check: unknown step $s" >&2; exit 2 ;; esac
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
printf '%-22s %-8s %6s  %s\n' step status secs note | tee -a "$summary"

finish() {
  tar -C "$logs" -czf "$out/logs.tar.gz" . 2>/dev/null
  rm -rf "$logs"
}
trap finish EXIT

want_step() { [[ ",$steps," == *",$1,"* ]]; }
left() { echo $((deadline - ($(date +%s) - t_start))); }
# record NAME STATUS SECS NOTE
record() {
  printf '%-22s %-8s %6s  %s\n' "$1" "$2" "$3" "$4" | tee -a "$summary"
  case $2 in PASS | SKIPPED) ;; *) failed=1 ;; esac
}
# run_step NAME BUDGET_S CMD...: runs CMD with a timeout of min(BUDGET, time left), log in
# $logs/NAME.log; the last line of the log that starts with "NOTE " becomes the summary note.
run_step() {
  local name=$1 budget=$2
  shift 2
  local t=$(left)
  [ "$t" -gt "$budget" ] && t=$budget
  if [ "$t" -le 5 ]; then
    record "$name" TIMEOUT 0 "no time left of the ${deadline}s deadline"
    return 1
  fi
  local t0=$(date +%s) rc
  # a step is a shell function: run it in a child bash (exported below) so timeout can kill it
  timeout -k 10 "$t" bash -c '"$@"' step "$@" >"$logs/$name.log" 2>&1
  rc=$?
  local dt=$(($(date +%s) - t0))
  local note
  note=$(grep '^NOTE ' "$logs/$name.log" | tail -1 | cut -c6-)
  case $rc in
    0) record "$name" PASS "$dt" "$note" ;;
    77) record "$name" SKIPPED "$dt" "${note:-skipped}" ;;
    124 | 137) record "$name" TIMEOUT "$dt" "killed after ${t}s; ${note}" ;;
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
  if [ "$dry" = 1 ]; then
    # same script as for a real call, fast compression (size figure slightly above xz -9)
    bash "$repo/tests/gpu/prepare_device_check.sh" --kit "$kit" --pipe-kit "$pkit" \
      --build "$work/build-devcheck" --xz -0 ${DM_DRY_NO_PIPELINE:+--no-pipeline} || return 1
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
  export PKG_CONFIG_PATH="$bdir/kit/engine/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$bdir/kit/engine/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
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
step_ctest_wrap() {
  step_ctest >"$logs/ctest.inner" 2>&1
  local rc=$?
  cat "$logs/ctest.inner"
  local total pass skip
  total=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#' "$logs/ctest.inner")
  pass=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#.* Passed' "$logs/ctest.inner")
  skip=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#.*Skipped' "$logs/ctest.inner")
  if [ "$dry" = 1 ]; then
    echo "NOTE $total gpu tests, $skip skipped (no GPU), $pass passed"
    # without a GPU every gpu test must skip loudly (77) and none may fail
    [ "$rc" = 0 ] && [ "$total" -gt 0 ] && [ "$skip" = "$total" ] && return 0
    return 1
  fi
  echo "NOTE $pass/$total passed, $skip skipped"
  [ "$rc" = 0 ] && [ "$skip" = 0 ] && [ "$total" -gt 0 ]
}

# --- benchmarks ------------------------------------------------------------------------------
step_bench() {
  local args=(--build "$bdir" --official "$kit/official" --shared "$kit/shared")
  [ "$dry" = 1 ] && args+=(--tiny)
  bash "$repo/benchmarks/gpu/run_gpu_bench.sh" "${args[@]}"
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
# pl_run NAME: runs job NAME under the bundle's mpirun; log $w/run_NAME.log (echoed)
pl_run() {
  local t0 rc
  t0=$(date +%s.%N)
  "${mpirun[@]}" "$p/bin/depthmatte" run "$w/job_$1.yaml" >"$w/run_$1.log" 2>&1
  rc=$?
  sed "s/^/[$1] /" "$w/run_$1.log"
  echo "RESULT e2e job=$1 exit=$rc seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') summary='$(grep -m1 '^rank 0 device:' "$w/run_$1.log")'"
  return $rc
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
      echo "NOTE bundle relocated and runs ($ref, $dev; cuda refused clearly); h5 checks SKIPPED (no h5py)"
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
  echo "NOTE $dev vs $ref, $frames frames: $( [ $fail = 0 ] && echo PASS || echo FAIL); $verified"
  return $fail
}

# --- run ---------------------------------------------------------------------------------------
export -f step_env step_kit step_build step_selftest step_ctest step_ctest_wrap step_bench step_pipeline pl_job pl_run
export dry kit pkit bdir logs py repo work cudnn_root site out blaslt cuda_ld
want_step env && run_step env 30 step_env
run_step kit $([ "$dry" = 1 ] && echo 750 || echo 60) step_kit || { echo "device_check: no kit, stopping" >&2; exit 1; }
if want_step build; then
  run_step build $([ "$dry" = 1 ] && echo 900 || echo 150) step_build || echo "device_check: build failed; later steps will fail" >&2
fi
if want_step selftest; then
  for p in float32 float16 bfloat16; do run_step "selftest_$p" 40 step_selftest "$p"; done
fi
want_step ctest && run_step ctest_gpu $([ "$dry" = 1 ] && echo 300 || echo 130) step_ctest_wrap
want_step bench && run_step bench 300 step_bench
want_step pipeline && run_step pipeline $([ "$dry" = 1 ] && echo 400 || echo 110) step_pipeline
echo "# total $(($(date +%s) - t_start)) s of the ${deadline} s deadline; logs: $out/logs.tar.gz" | tee -a "$summary"
cat "$out/results.txt"
echo
cat "$summary"
exit $failed
