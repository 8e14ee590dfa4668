#!/usr/bin/env bash
# Writes the seed corpora of the fuzz harnesses into DIR (the build tree; nothing generated is
# committed). Usage: make_seeds.sh SOURCE_DIR DIR
#   DIR/config/       configs/*.yaml of the repository (real jobs: every section and key style)
#   DIR/safetensors/  small valid files of every dtype, metadata, 0-d and empty tensors, made
#                     here with python3 (struct + json only), plus a few near-misses
#   DIR/video/        tiny clips (32x24, 6 frames) made with the ffmpeg CLI in the containers and
#                     codecs the project meets (mp4/h264, mkv/ffv1, webm/vp9, ts/mpeg2, avi/mjpeg,
#                     mp4/hevc, mkv/av1), a few hundred bytes to a few KB each, so that mutations
#                     stay cheap. Encoders missing from this ffmpeg are skipped.
set -euo pipefail
src=$1
out=$2
mkdir -p "$out/config" "$out/safetensors" "$out/video"

cp "$src"/configs/*.yaml "$out/config/"

python3 - "$out/safetensors" <<'PY'
import json, struct, sys, os
d = sys.argv[1]
def st(name, tensors, meta=None, raw_header=None):
    header, blobs, off = {}, b"", 0
    if meta is not None:
        header["__metadata__"] = meta
    for tname, dtype, shape, data in tensors:
        header[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs += data
        off += len(data)
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    open(os.path.join(d, name), "wb").write(struct.pack("<Q", len(h)) + h + blobs)
f32 = lambda *v: struct.pack("<%df" % len(v), *v)
st("f32.st", [("w", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6))], {"format": "pt"})
st("f16_bf16.st", [("a.weight", "F16", [2], b"\x00\x3c\x00\xc0"),
                   ("b.bias", "BF16", [1, 2], b"\x80\x3f\x00\x40")])
st("u8_i64.st", [("mask", "U8", [4], b"\x00\x01\xfe\xff"),
                 ("idx", "I64", [1], struct.pack("<q", -7))])
st("scalar_empty.st", [("s", "F32", [], f32(3.5)), ("e", "F32", [0, 4], b"")])
st("meta_only.st", [], {"format": "pt", "note": "x"})
st("bad_offsets.st", [], raw_header=b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}')
st("bad_dtype.st", [("w", "F64", [1], b"\0" * 8)])
PY

# Each clip is best-effort: a missing encoder only means one seed fewer.
gen() { # gen NAME ENCODER-ARGS...
    local name=$1
    shift
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=32x24:rate=6 -frames:v 6 \
        "$@" "$out/video/$name" || echo "make_seeds: could not make $name (encoder missing?)"
}
gen h264.mp4 -c:v libx264 -preset ultrafast -g 3 -bf 2 -pix_fmt yuv420p
gen ffv1.mkv -c:v ffv1 -pix_fmt yuv420p
gen vp9.webm -c:v libvpx-vp9 -deadline realtime -g 3 -pix_fmt yuv420p
gen mpeg2.ts -c:v mpeg2video -g 3 -pix_fmt yuv420p
gen mjpeg.avi -c:v mjpeg -pix_fmt yuvj420p
gen hevc.mp4 -c:v libx265 -preset ultrafast -x265-params log-level=none -g 3 -pix_fmt yuv420p
gen av1.mkv -c:v libaom-av1 -cpu-used 8 -g 3 -pix_fmt yuv420p
gen rotated.mp4 -c:v libx264 -preset ultrafast -g 3 -pix_fmt yuv420p -metadata:s:v rotate=90
ls -l "$out/video" | awk 'NR>1{s+=$5} END{print "make_seeds: video seeds total", s, "bytes"}'
