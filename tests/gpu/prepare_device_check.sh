#!/usr/bin/env bash
# Prepares the GPU device check (tests/gpu/device_check.sh, docs/gpu.md) on a machine without a
# GPU: fills two ignored folders of the repository with everything the device machine lacks, one
# per device call, measures each against the call's 64 MiB, and prints the exact `run` calls.
#
#   tests/gpu/prepare_device_check.sh [--kit DIR] [--pipe-kit DIR] [--build DIR] [--limit-mib N]
#                                     [--xz LEVEL] [--no-pipeline] [--official-git KIND=GITDIR ...]
#                                     [--no-official] [--check-official]
#
# The first kit (DIR, default .devkit: engine build, selftest, GPU tests, benchmarks):
#   shared/     the golden files the GPU tests use (copied from ../shared or $DM_SHARED), the RVM
#               weights and one real clip
#   official/   da2/ rvm/ vda/: the .py files of the official PyTorch code the GPU benchmarks
#               import, exported with `git --git-dir=GITDIR archive` from mirrors of
#               DepthAnything/Depth-Anything-V2, PeterL1n/RobustVideoMatting and
#               DepthAnything/Video-Depth-Anything (read-only material, never committed; default
#               mirrors /work/.mirror/<owner>+<name>/repo, or --official-git da2=DIR etc.).
#               A missing mirror is an error naming the repository to fetch; --no-official
#               makes the kit without them, and the device check then reports the PyTorch
#               comparison as ABSENT (not PASS); --check-official only checks the mirrors
#               (exit 0 all three there, 1 naming the missing ones) and makes nothing
#   engine.tar.xz    sysroot for the engine-only build on the device: OpenBLAS and cJSON shared
#                    libraries, headers and pkg-config files from this machine's Debian packages,
#                    and pkg-config (pkgconf) itself
#   manifest.txt     sizes (raw and compressed), commit
# The pipeline kit (--pipe-kit, default .devkit-pipe; not with --no-pipeline): the second call
#   pipeline.tar.xz  bin/ depthmatte and dm_make_recipe_weights built here with CUDA (--build,
#                    Release, sm_90 + PTX), orterun (mpirun); lib/ every shared library those
#                    load except glibc, the compiler runtime and CUDA (tests/gpu/bundle_common.sh),
#                    with stand-ins (tests/gpu/make_stub_lib.py) for the codec/ICU libraries the
#                    check never calls; ompi/ the Open MPI runtime (components, PMIx components,
#                    help files)
#   shared/          the clip, the RVM weights, the DA-V2 recipe, and videos/juggle_1080p.mp4:
#                    frames 0-159 of the clip scaled to 1920x1080, H.264 at ~1.5 Mbit/s (made here
#                    with ffmpeg, never committed) for the pipeline step's 1080p throughput run
#   manifest.txt     sizes, the stand-ins, the largest files
# Each kit with the tree must fit --limit-mib (default 64), or the script fails naming the sizes.
# Exit: 0 ready, 1 error (nothing to call), 2 usage error.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kit=$repo/.devkit
pkit=$repo/.devkit-pipe
build=$repo/build-devcheck
limit_mib=64
xz_level=-9
pipeline=1
official=1
check_only=0
declare -A official_git=(
  [da2]=/work/.mirror/DepthAnything+Depth-Anything-V2/repo
  [rvm]=/work/.mirror/PeterL1n+RobustVideoMatting/repo
  [vda]=/work/.mirror/DepthAnything+Video-Depth-Anything/repo
)
declare -A official_repo=(
  [da2]=DepthAnything/Depth-Anything-V2
  [rvm]=PeterL1n/RobustVideoMatting
  [vda]=DepthAnything/Video-Depth-Anything
)
usage() {
  sed -n '6,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --kit) kit=$(realpath -m "$2"); shift 2 ;;
    --pipe-kit) pkit=$(realpath -m "$2"); shift 2 ;;
    --build) build=$(realpath -m "$2"); shift 2 ;;
    --limit-mib) limit_mib=$2; shift 2 ;;
    --xz) xz_level=$2; shift 2 ;;
    --no-pipeline) pipeline=0; shift ;;
    --no-official) official=0; shift ;;
    --check-official) check_only=1; shift ;;
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

# The official code first: without it the benchmark step has nothing to compare with, so a kit
# without it must be asked for (--no-official), not found out on the device.
if [ "$official" = 1 ]; then
  missing=""
  for k in da2 rvm vda; do
    git --git-dir="${official_git[$k]}" rev-parse -q --verify HEAD >/dev/null 2>&1 ||
      missing="$missing github:${official_repo[$k]} (expected at ${official_git[$k]}, or --official-git $k=GITDIR);"
  done
  [ -z "$missing" ] || die "no git mirror of the official code:$missing mirror them there (git clone --bare https://github.com/OWNER/NAME DIR, or this workplace's fetch tool), or pass --no-official to make a kit whose device check reports the PyTorch comparison as ABSENT"
fi
if [ "$check_only" = 1 ]; then
  [ "$official" = 1 ] || die "--check-official with --no-official checks nothing"
  say "official code: all three mirrors there"
  exit 0
fi

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
  golden/vda_vits/stream.safetensors
  golden/rvm_r50/recipe.json golden/rvm_r50/sequence.safetensors
  golden/rvm_r50/sequence_noDGF.safetensors
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
  if [ "$official" = 1 ]; then
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
    say "--no-official: no official $k code in the kit; the device check reports the PyTorch comparison as ABSENT"
    echo "official_$k absent (--no-official)" >>"$manifest"
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

# --- 4. size check of the first kit against the device call's limit ---------------------------
tree_bytes=$(cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | awk '/total$/ { s += $1 } END { print s + 0 }')
echo "tree_bytes $tree_bytes" >>"$manifest"
limit_bytes=$((limit_mib * 1048576))
total=$((tree_bytes + $(bytes_of "$kit")))
echo "total_bytes $total (limit $limit_bytes)" >>"$manifest"
[ "$total" -le "$limit_bytes" ] || die "the first call carries $(mib "$total") MiB > $limit_mib MiB (tree $(mib "$tree_bytes") MiB + $kit)"
cat "$manifest"
say "kit ready: $kit ($(mib "$total") MiB with the tree, limit $limit_mib MiB)"

# --- 5. the pipeline kit (second call): depthmatte (CUDA) + every library it loads + Open MPI --
# It does not fit beside the first kit (docs/gpu.md), so it is a kit of its own for a second
# device call: pipeline.tar.xz (bin/, lib/, ompi/), the clip, the RVM weights, the DA-V2 recipe
# (the DA-V2 weights are made from it on the device), manifest.txt.
if [ "$pipeline" = 1 ]; then
  # shellcheck source=tests/gpu/bundle_common.sh
  . "$repo/tests/gpu/bundle_common.sh"
  case $pkit/ in
    "$repo"/*) git -C "$repo" check-ignore -q "$pkit/x" || die "$pkit is not ignored by git (.gitignore has /.devkit-pipe/)" ;;
  esac
  rm -rf "$pkit"
  mkdir -p "$pkit/shared"
  pman=$pkit/manifest.txt
  {
    echo "# depthmatte pipeline kit (second device call), $(date -u +%FT%TZ)"
    grep -E '^(commit|host) ' "$manifest"
  } >"$pman"
  for f in videos/05_default_juggle.mp4 models/rvm_mobilenetv3.safetensors golden/da2_vits/recipe.json; do
    [ -f "$shared/$f" ] || die "missing $shared/$f (set DM_SHARED)"
    mkdir -p "$pkit/shared/$(dirname "$f")"
    cp "$shared/$f" "$pkit/shared/$f"
  done
  # The 1080p throughput clip (device_check.sh step_pipeline): the juggling clip's first 160
  # frames scaled to 1920x1080 (the issue's "1080p" figure), H.264 High at ~1.5 Mbit/s, a
  # keyframe every 2 s as a camera would write it: ~1.3 MB instead of a real 1080p clip's 10+.
  command -v ffmpeg >/dev/null || die "ffmpeg not found: it makes the 1080p clip of the pipeline kit (apt-get install ffmpeg)"
  ffmpeg -hide_banner -loglevel error -y -i "$shared/videos/05_default_juggle.mp4" -map 0:v:0 \
    -frames:v 160 -vf scale=1920:1080:flags=bicubic -an -sn -dn -c:v libx264 -preset veryfast \
    -b:v 1500k -maxrate 2000k -bufsize 4000k -pix_fmt yuv420p -g 48 -threads 2 \
    "$pkit/shared/videos/juggle_1080p.mp4" || die "ffmpeg could not make the 1080p clip"
  echo "clip_1080p $(bytes_of "$pkit/shared/videos/juggle_1080p.mp4") bytes, 160 frames 1920x1080 H.264 (from 05_default_juggle.mp4)" >>"$pman"
  echo "shared_bytes $(bytes_of "$pkit/shared")" >>"$pman"
  # Same flags as the device build (device_check.sh), plus the pipeline.
  cuda=ON
  if ! command -v nvcc >/dev/null; then
    cuda=OFF
    say "WARNING: no nvcc here: depthmatte is built WITHOUT CUDA; this kit cannot check a GPU"
    echo "depthmatte_cuda OFF (no nvcc where the kit was made: only good for the dry run)" >>"$pman"
  fi
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDM_WITH_CUDA=$cuda \
    "-DCMAKE_CUDA_ARCHITECTURES=90-real;90-virtual" >"$pkit/pipeline_build.log" 2>&1 ||
    die "cmake of $build failed (see $pkit/pipeline_build.log)"
  cmake --build "$build" -j "${JOBS:-2}" --target depthmatte dm_make_recipe_weights \
    >>"$pkit/pipeline_build.log" 2>&1 || die "build of depthmatte failed (see $pkit/pipeline_build.log)"
  rm -f "$pkit/pipeline_build.log"
  p=$sys/pipeline
  mkdir -p "$p/bin" "$p/lib" "$p/ompi/lib" "$p/ompi/pmix" "$p/ompi/share" "$p/ompi/etc"
  cp "$build/depthmatte" "$build/tests/dm_make_recipe_weights" "$p/bin/"
  cp "$(readlink -f "$(command -v mpirun)")" "$p/bin/mpirun"
  cp "$(command -v orted)" "$p/bin/" 2>/dev/null || true
  ompi_pkglib=$(ompi_info --path pkglibdir --parsable 2>/dev/null | sed -n 's/^path:pkglibdir://p' | head -1)
  [ -d "$ompi_pkglib" ] || ompi_pkglib=/usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3
  # Only the components a one-node run needs (shared memory, TCP, self); the others pull in
  # InfiniBand/UCX/libfabric stacks the device machine has no use for.
  for c in "$ompi_pkglib"/mca_*.so; do
    case $(basename "$c") in
      *openib* | *ucx* | *ofi* | *psm* | *verbs* | *portals* | *cuda* | *slurm* | *lsf* | *tm_* | *sge* | *alps*) ;;
      *) cp "$c" "$p/ompi/lib/" ;;
    esac
  done
  pmix_comp=$(find /usr/lib/x86_64-linux-gnu -path '*pmix*/lib/pmix' -type d 2>/dev/null | head -1)
  if [ -n "$pmix_comp" ]; then cp "$pmix_comp"/*.so "$p/ompi/pmix/"; fi
  cp -r /usr/share/openmpi "$p/ompi/share/"
  if [ -d /usr/share/pmix ]; then cp -r /usr/share/pmix "$p/ompi/share/"; fi
  objs=("$p"/bin/* "$p"/ompi/lib/*.so "$p"/ompi/pmix/*.so)
  # Stand-ins first (libraries NEEDED but never called on the check's path, bundle_common.sh),
  # so that their own dependencies drop out of the closure below.
  stub_raw=0
  : >"$pman.stubs"
  for l in $(ldd "${objs[@]}" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | grep -E "$dm_bundle_stub_re" || true); do
    python3 "$repo/tests/gpu/make_stub_lib.py" "$l" "$p/lib" >>"$pman.stubs" || die "stand-in for $l failed"
    stub_raw=$((stub_raw + $(bytes_of "$(readlink -f "$l")")))
  done
  # Every other library those load (the closure, with the stand-ins in place), except the
  # system and CUDA libraries of bundle_common.sh.
  dm_bundle_outside "$p/lib" "${objs[@]}" | awk '$3 ~ /^\// {print $3}' |
    while read -r l; do cp -L "$l" "$p/lib/"; done
  pmix_lib=$(ldconfig -p | awk '/libpmix.so.2 / && !f {print $NF; f = 1}')
  if [ -n "$pmix_lib" ] && [ ! -e "$p/lib/libpmix.so.2" ]; then cp -L "$pmix_lib" "$p/lib/libpmix.so.2"; fi
  outside=$(dm_bundle_outside "$p/lib" "${objs[@]}")
  [ -z "$outside" ] || die "the pipeline bundle would still load from this system: $outside"
  raw_pipe=$(bytes_of "$p")
  nlib=$(find "$p/lib" -name '*.so*' | wc -l)
  nstub=$(grep -c . "$pman.stubs" || true)
  say "pipeline bundle: $nlib libraries ($nstub stand-ins for $(mib "$stub_raw") MiB left out) + Open MPI runtime, $(mib "$raw_pipe") MiB raw; xz $xz_level..."
  t0=$(date +%s)
  # 32 MiB blocks: xz -9 would otherwise make one 192 MiB block, i.e. one thread
  tar -C "$sys" -cf - pipeline | xz -T0 --block-size=32MiB "$xz_level" >"$pkit/pipeline.tar.xz"
  xz_pipe=$(bytes_of "$pkit/pipeline.tar.xz")
  {
    echo "pipeline_libraries $nlib"
    sed 's/^make_stub_lib: /pipeline_stand_in /' "$pman.stubs"
    echo "pipeline_left_out_bytes $stub_raw"
    echo "pipeline_raw_bytes $raw_pipe"
    echo "pipeline_xz_bytes $xz_pipe (xz $xz_level, $(($(date +%s) - t0)) s)"
    echo "pipeline_largest $(du -b "$p"/lib/* "$p"/bin/* | sort -n | tail -8 | awk '{n=$2; sub(".*/","",n); printf "%s=%.1fMiB ", n, $1/1048576}')"
  } >>"$pman"
  rm -f "$pman.stubs"
  ptotal=$((tree_bytes + $(bytes_of "$pkit")))
  echo "total_bytes $ptotal (limit $limit_bytes)" >>"$pman"
  cat "$pman"
  [ "$ptotal" -le "$limit_bytes" ] ||
    die "the pipeline call would carry $(mib "$ptotal") MiB > $limit_mib MiB (tree $(mib "$tree_bytes"), pipeline.tar.xz $(mib "$xz_pipe") of $(mib "$raw_pipe") MiB raw, clip + weights $(mib "$(bytes_of "$pkit/shared")")): trim the bundle (bundle_common.sh) before calling"
  say "pipeline kit ready: $pkit ($(mib "$ptotal") MiB with the tree, limit $limit_mib MiB)"
fi

cat <<EOF

Device calls (the device tool's run, in this order; docs/gpu.md "The prepared device check").
Both fit the 900 s of device time: <= 2 machine starts (60-120 s each) + 440 s + 200 s = 880 s.
1. engine build, selftest, GPU tests, benchmarks:
  command:   bash tests/gpu/device_check.sh --kit .devkit --deadline 390
  carry:     [".devkit"]
  timeout_s: 440
EOF
if [ "$pipeline" = 1 ]; then
  cat <<EOF
2. the pipeline under mpirun, CUDA vs CPU, 1080p throughput (right after 1: the machine stays
   warm 30 s):
  command:   bash tests/gpu/device_check.sh --kit .devkit-pipe --steps pipeline --deadline 170
  carry:     [".devkit-pipe"]
  timeout_s: 200
EOF
fi
echo "(then give_back)"
