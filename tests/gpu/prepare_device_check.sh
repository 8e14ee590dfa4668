#!/usr/bin/env bash
# Prepares the one GPU device check (tests/gpu/device_check.sh, docs/gpu.md) on a machine
# without a GPU: fills the ignored folder .devkit/ of the repository with everything the device
# machine lacks, measures it against the device call's 64 MiB, and prints the exact `run` call.
#
#   tests/gpu/prepare_device_check.sh [--kit DIR] [--build DIR] [--limit-mib N] [--xz LEVEL]
#                                     [--no-pipeline] [--official-git KIND=GITDIR ...]
#
# What goes into the kit (DIR, default .devkit):
#   shared/     the golden files the GPU tests use (copied from ../shared or $DM_SHARED), the RVM
#               weights and one real clip (the e2e job's input)
#   official/   da2/ rvm/ vda/: the .py files of the official PyTorch code the GPU benchmarks
#               import, exported with `git --git-dir=GITDIR archive` from mirrors of
#               DepthAnything/Depth-Anything-V2, PeterL1n/RobustVideoMatting and
#               DepthAnything/Video-Depth-Anything (read-only material, never committed; default
#               mirrors /work/.mirror/<owner>+<name>/repo, or --official-git da2=DIR etc.)
#   engine.tar.xz    sysroot for the engine-only build on the device: OpenBLAS and cJSON shared
#                    libraries, headers and pkg-config files from this machine's Debian packages,
#                    and pkg-config (pkgconf) itself
#   pipeline.tar.xz  the depthmatte CLI built here with CUDA (--build, same flags as the device
#                    build) plus every shared library it loads that is not glibc or CUDA (MPI,
#                    HDF5, FFmpeg, libyaml, OpenSSL, ... and their dependencies) and the Open MPI
#                    runtime (orterun, components, PMIx components, help files). Left out, with
#                    the figures printed, when the kit would not fit under --limit-mib.
#   manifest.txt     sizes (raw and compressed), commit, what was left out and why
# Exit: 0 ready (possibly without the pipeline part: see manifest), 1 error.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kit=$repo/.devkit
build=$repo/build-devcheck
limit_mib=64
xz_level=-9
pipeline=1
declare -A official_git=(
  [da2]=/work/.mirror/DepthAnything+Depth-Anything-V2/repo
  [rvm]=/work/.mirror/PeterL1n+RobustVideoMatting/repo
  [vda]=/work/.mirror/DepthAnything+Video-Depth-Anything/repo
)
usage() {
  sed -n '4,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --kit) kit=$(realpath -m "$2"); shift 2 ;;
    --build) build=$(realpath -m "$2"); shift 2 ;;
    --limit-mib) limit_mib=$2; shift 2 ;;
    --xz) xz_level=$2; shift 2 ;;
    --no-pipeline) pipeline=0; shift ;;
    --official-git)
      k=${2%%=*}; v=${2#*=}
      case $k in da2|rvm|vda) official_git[$k]=$v ;; *) usage ;; esac
      shift 2 ;;
    -h|--help) usage ;;
    *) echo "prepare_device_check: unknown option $1" >&2; usage ;;
  esac
done
[[ $limit_mib =~ ^[0-9]+$ ]] || { echo "prepare_device_check: --limit-mib needs an integer" >&2; exit 2; }
shared=${DM_SHARED:-$repo/../shared}
say() { echo "prepare_device_check: $*"; }
die() { echo "prepare_device_check: ERROR: $*" >&2; exit 1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
bytes_of() { du -sb "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
# The kit must be ignored by git, or it would travel twice (tree + carry) and could be committed.
case $kit/ in
  "$repo"/*) git -C "$repo" check-ignore -q "$kit/x" || die "$kit is not ignored by git (.gitignore has /.devkit/)" ;;
esac

rm -rf "$kit"
mkdir -p "$kit/shared" "$kit/official"
manifest=$kit/manifest.txt
{
  echo "# depthmatte device kit, $(date -u +%FT%TZ)"
  echo "commit $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- src include tests benchmarks CMakeLists.txt || echo ' + uncommitted changes')"
  echo "host $(uname -m) $(. /etc/os-release && echo "$PRETTY_NAME")"
} >"$manifest"

# --- 1. golden files and data (only what the GPU tests, benchmarks and the e2e job read) -------
golden_files=(
  golden/rvm_mbv3/sequence.safetensors golden/rvm_mbv3/sequence_fgf.safetensors
  golden/rvm_mbv3/sequence_noDGF.safetensors
  golden/da2_vits/recipe.json golden/da2_vits/case_square.safetensors
  golden/da2_vits/case_wide.safetensors
  golden/vda_vits/recipe.json golden/vda_vits/pe_buffers.safetensors
  golden/vda_vits/window.safetensors golden/vda_vits/video.safetensors
  models/rvm_mobilenetv3.safetensors
  videos/05_default_juggle.mp4
)
for f in "${golden_files[@]}"; do
  [ -f "$shared/$f" ] || die "missing $shared/$f (set DM_SHARED)"
  mkdir -p "$kit/shared/$(dirname "$f")"
  cp "$shared/$f" "$kit/shared/$f"
done
echo "shared_bytes $(bytes_of "$kit/shared")" >>"$manifest"

# --- 2. official PyTorch code (.py files only) ---------------------------------------------
declare -A official_paths=(
  [da2]="depth_anything_v2"
  [rvm]="model"
  [vda]="video_depth_anything utils"
)
for k in da2 rvm vda; do
  g=${official_git[$k]}
  if git --git-dir="$g" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    mkdir -p "$kit/official/$k"
    # shellcheck disable=SC2086
    # (git archive warns about blobs outside these paths that the mirror lacks: harmless)
    git --git-dir="$g" archive HEAD ${official_paths[$k]} 2>/dev/null | tar -x -C "$kit/official/$k"
    find "$kit/official/$k" -type f ! -name '*.py' -delete
    # shellcheck disable=SC2086
    want=$(git --git-dir="$g" ls-tree -r --name-only HEAD ${official_paths[$k]} | grep -c '\.py$')
    got=$(find "$kit/official/$k" -name '*.py' | wc -l)
    [ "$want" = "$got" ] || die "official $k: exported $got of $want .py files"
    echo "official_$k $(git --git-dir="$g" rev-parse HEAD) from $g" >>"$manifest"
  else
    say "WARNING: no git mirror of the official $k code at $g (fetch it, or --official-git $k=DIR);"
    say "         the device check's PyTorch benchmark of $k will say SKIPPED"
    echo "official_$k missing" >>"$manifest"
  fi
done

# --- 3. engine sysroot: OpenBLAS + cJSON (libraries, headers, pkg-config) ------------------
# The device has gcc, cmake, ninja, nvcc, cuDNN and cuBLAS(Lt) but none of these -dev packages.
sys=$(mktemp -d)
trap 'rm -rf "$sys"' EXIT
mkdir -p "$sys/engine/lib/pkgconfig" "$sys/engine/include"
ob_inc=$(pkg-config --variable=includedir openblas)
ob_lib=$(pkg-config --variable=libdir openblas)
cj_lib=$(pkg-config --variable=libdir libcjson)
cj_inc=$(pkg-config --variable=includedir libcjson)
cp "$ob_inc"/cblas.h "$ob_inc"/openblas_config.h "$sys/engine/include/"
mkdir -p "$sys/engine/include/cjson"
cp "$cj_inc/cjson/cJSON.h" "$sys/engine/include/cjson/"
for l in "$ob_lib/libopenblas.so.0" "$cj_lib/libcjson.so.1"; do cp -L "$l" "$sys/engine/lib/"; done
# OpenBLAS's Fortran runtime (not on the device's image)
for l in $(ldd "$ob_lib/libopenblas.so.0" | awk '$3 ~ /libgfortran|libquadmath/ {print $3}'); do
  cp -L "$l" "$sys/engine/lib/"
done
# pkg-config itself (CMake's FindPkgConfig needs it; the device image may lack it)
mkdir -p "$sys/engine/bin"
cp "$(readlink -f "$(command -v pkg-config)")" "$sys/engine/bin/pkg-config"
for l in $(ldd "$(readlink -f "$(command -v pkg-config)")" | awk '$3 ~ /libpkgconf/ {print $3}'); do
  cp -L "$l" "$sys/engine/lib/"
done
ln -s libopenblas.so.0 "$sys/engine/lib/libopenblas.so"
ln -s libcjson.so.1 "$sys/engine/lib/libcjson.so"
ver_ob=$(pkg-config --modversion openblas)
ver_cj=$(pkg-config --modversion libcjson)
cat >"$sys/engine/lib/pkgconfig/openblas.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: openblas
Description: OpenBLAS (Debian $(dpkg-query -W -f '${Version}' libopenblas0-pthread 2>/dev/null || echo ?), device kit)
Version: $ver_ob
Libs: -L\${libdir} -lopenblas
Cflags: -I\${includedir}
EOF
cat >"$sys/engine/lib/pkgconfig/libcjson.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: libcjson
Description: cJSON (Debian, device kit)
Version: $ver_cj
Libs: -L\${libdir} -lcjson
Cflags: -I\${includedir} -I\${includedir}/cjson
EOF
raw_engine=$(bytes_of "$sys/engine")
tar -C "$sys" -cf - engine | xz -T0 "$xz_level" >"$kit/engine.tar.xz"
echo "engine_raw_bytes $raw_engine" >>"$manifest"
echo "engine_xz_bytes $(bytes_of "$kit/engine.tar.xz")" >>"$manifest"

# --- 4. pipeline: depthmatte (CUDA) + its runtime libraries + Open MPI runtime ---------------
tree_bytes=$(cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | awk '/total$/ { s += $1 } END { print s + 0 }')
echo "tree_bytes $tree_bytes" >>"$manifest"
limit_bytes=$((limit_mib * 1048576))
if [ "$pipeline" = 1 ]; then
  # Same flags as the device build (device_check.sh), plus the pipeline.
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDM_WITH_CUDA=ON \
    "-DCMAKE_CUDA_ARCHITECTURES=90-real;90-virtual" >"$kit/pipeline_build.log" 2>&1 ||
    die "cmake of $build failed (see $kit/pipeline_build.log)"
  cmake --build "$build" -j "${JOBS:-2}" --target depthmatte >>"$kit/pipeline_build.log" 2>&1 ||
    die "build of depthmatte failed (see $kit/pipeline_build.log)"
  p=$sys/pipeline
  mkdir -p "$p/bin" "$p/lib" "$p/ompi/lib" "$p/ompi/pmix" "$p/ompi/share"
  cp "$build/depthmatte" "$p/bin/"
  [ -x "$build/dm_selftest" ] && cp "$build/dm_selftest" "$p/bin/"
  orterun=$(readlink -f "$(command -v mpirun)")
  cp "$orterun" "$p/bin/mpirun"
  cp "$(command -v orted)" "$p/bin/" 2>/dev/null || true
  ompi_pkglib=$(ompi_info --path pkglibdir --parsable 2>/dev/null | sed -n 's/^path:pkglibdir://p')
  [ -d "$ompi_pkglib" ] || ompi_pkglib=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
  # Only the components a one-node run needs (shared memory, TCP, self); the others pull in
  # InfiniBand/UCX/libfabric stacks the device machine has no use for.
  for c in "$ompi_pkglib"/mca_*.so; do
    case $(basename "$c") in
      *openib* | *ucx* | *ofi* | *psm* | *verbs* | *portals* | *cuda* | *slurm* | *lsf* | *tm_* | *sge* | *alps*) ;;
      *) cp "$c" "$p/ompi/lib/" ;;
    esac
  done
  pmix_dir=$(dirname "$(ldconfig -p | awk '/libpmix.so.2 / {print $NF; exit}')")
  pmix_comp=$(find /usr/lib/x86_64-linux-gnu -path '*pmix*/lib/pmix' -type d 2>/dev/null | head -1)
  [ -n "$pmix_comp" ] && cp "$pmix_comp"/*.so "$p/ompi/pmix/" 2>/dev/null || true
  cp -r /usr/share/openmpi "$p/ompi/share/" 2>/dev/null || true
  [ -d /usr/share/pmix ] && cp -r /usr/share/pmix "$p/ompi/share/" || true
  # Every shared library those load, except glibc (the device's is newer) and CUDA (the
  # device's own toolkit and PyTorch wheels provide cudart, cuBLASLt, cuDNN).
  objs=("$p"/bin/* "$p"/ompi/lib/*.so "$p"/ompi/pmix/*.so)
  ldd "${objs[@]}" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    grep -v -E '/(libc|libm|libdl|libpthread|librt|libresolv|libmvec|libutil|ld-linux-x86-64)\.so' |
    grep -v -E 'libcuda|libcudart|libcublas|libcudnn|libnvidia|libnvrtc' |
    while read -r l; do [ -e "$sys/engine/lib/$(basename "$l")" ] || cp -L "$l" "$p/lib/"; done
  [ -n "$pmix_dir" ] && [ -f "$pmix_dir/libpmix.so.2" ] && cp -L "$pmix_dir/libpmix.so.2" "$p/lib/" || true
  missing=$(LD_LIBRARY_PATH=$p/lib:$sys/engine/lib ldd "${objs[@]}" 2>/dev/null | grep 'not found' | grep -v -E 'libcuda|libcublas|libcudnn' | sort -u || true)
  [ -z "$missing" ] || die "pipeline bundle misses libraries: $missing"
  raw_pipe=$(bytes_of "$p")
  nlib=$(ls "$p/lib" | wc -l)
  say "pipeline bundle: $nlib libraries + Open MPI runtime, $(mib "$raw_pipe") MiB raw; compressing (xz -0 first)..."
  tar -C "$sys" -cf - pipeline | xz -T0 -0 >"$kit/pipeline.tar.xz"
  xz_pipe=$(bytes_of "$kit/pipeline.tar.xz")
  # xz -9 is ~17 % smaller than xz -0 here (2026-12-01: 51.3 vs 61.8 MiB) and takes 10x longer:
  # recompress only when the result could fit (then the size check below uses the real figure)
  rest=$((tree_bytes + $(bytes_of "$kit") - xz_pipe))
  if [ "$xz_level" != -0 ] && [ $((rest + xz_pipe * 80 / 100)) -le "$limit_bytes" ]; then
    say "could fit: recompressing with xz $xz_level..."
    tar -C "$sys" -cf - pipeline | xz -T0 "$xz_level" >"$kit/pipeline.tar.xz"
    xz_pipe=$(bytes_of "$kit/pipeline.tar.xz")
  elif [ "$xz_level" != -0 ]; then
    say "cannot fit even at 80 % of the xz -0 size: not recompressing with xz $xz_level"
  fi
  {
    echo "pipeline_libraries $nlib"
    echo "pipeline_raw_bytes $raw_pipe"
    echo "pipeline_xz_bytes $xz_pipe ($( [ "$rest" ] && [ $((rest + xz_pipe)) -le "$limit_bytes" ] && echo "xz $xz_level" || echo "xz -0"))"
    echo "pipeline_largest $(du -b "$p"/lib/* | sort -n | tail -8 | awk '{n=$2; sub(".*/","",n); printf "%s=%.1fMiB ", n, $1/1048576}')"
  } >>"$manifest"
fi

# --- 5. size check against the device call's limit ------------------------------------------
rm -f "$kit/pipeline_build.log"
total=$((tree_bytes + $(bytes_of "$kit")))
if [ -f "$kit/pipeline.tar.xz" ] && [ "$total" -gt "$limit_bytes" ]; then
  without=$((total - xz_pipe))
  msg="pipeline bundle left out: tree + kit = $(mib "$total") MiB > $limit_mib MiB (pipeline.tar.xz $(mib "$xz_pipe") MiB of it, $(mib "$raw_pipe") MiB raw; without it $(mib "$without") MiB)"
  say "$msg"
  echo "pipeline_left_out $msg" >>"$manifest"
  rm -f "$kit/pipeline.tar.xz"
  total=$without
fi
echo "total_bytes $total (limit $limit_bytes)" >>"$manifest"
[ "$total" -le "$limit_bytes" ] || die "even without the pipeline the call carries $(mib "$total") MiB > $limit_mib MiB"
cat "$manifest"
say "kit ready: $kit ($(mib "$total") MiB with the tree, limit $limit_mib MiB)"
cat <<EOF

Device call (paste into the device tool's run; docs/gpu.md):
  command:   bash tests/gpu/device_check.sh --kit .devkit
  carry:     [".devkit"]
  timeout_s: 540
EOF
