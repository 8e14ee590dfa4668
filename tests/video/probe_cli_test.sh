#!/bin/sh
# `depthmatte probe`: good files print one line each on stdout (rotation applied, SAR shown);
# a bad file prints exactly one error line naming the file and the cause on stderr, the
# others are still probed, and the exit status is non-zero. Usage: probe_cli_test.sh EXE SRC
exe=$1
shared=${DM_SHARED:-$2/../shared}
v=$shared/videos
if [ ! -r "$v/odd/video_rotation_90.mp4" ]; then
  echo "*** SKIPPED: $v not present ***"; exit 77
fi
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
fail=0
"$exe" probe "$v/odd/video_rotation_90.mp4" /nonexistent/clip.mp4 "$v/odd/sar_2x1.mp4" \
  "$v/odd/chunk_out_of_range.mp4" >"$out" 2>"$err"
rc=$?
cat "$out" "$err"
[ $rc -ne 0 ] || { echo "FAIL: exit status 0 despite bad files"; fail=1; }
[ "$(wc -l <"$out")" -eq 2 ] || { echo "FAIL: expected 2 stdout lines"; fail=1; }
[ "$(wc -l <"$err")" -eq 2 ] || { echo "FAIL: expected 2 stderr lines"; fail=1; }
grep -q "video_rotation_90.mp4: .*1 frames.* 60x100.*rotation 90" "$out" || { echo "FAIL: rotation"; fail=1; }
grep -q "sar_2x1.mp4: .*150 frames.*SAR 2:1" "$out" || { echo "FAIL: SAR"; fail=1; }
grep -q "/nonexistent/clip.mp4: No such file" "$err" || { echo "FAIL: missing-file line"; fail=1; }
grep -q "chunk_out_of_range.mp4: Invalid data found" "$err" || { echo "FAIL: bad-file line"; fail=1; }
"$exe" probe --json --stream 3 "$v/nasa_13013.mp4" >"$out" 2>"$err" || { echo "FAIL: --stream 3"; fail=1; }
grep -q '"stream_index":[[:space:]]*3' "$out" || { echo "FAIL: json stream_index"; fail=1; }
"$exe" probe --stream 1 "$v/nasa_13013.mp4" >"$out" 2>"$err" && { echo "FAIL: audio stream accepted"; fail=1; }
grep -q "stream 1 is audio" "$err" || { echo "FAIL: audio stream message"; fail=1; }
# target_fps / max_res as a job sees them (25 fps at 10: round(2.5) = 2, half to even)
"$exe" probe --target-fps 10 --max-res 320 "$v/bikes.mp4" >"$out" 2>"$err" || { echo "FAIL: --target-fps"; fail=1; }
cat "$out"
grep -q "bikes.mp4: .*125 frames, 25/2 fps, 320x136, .*frame step 2 of 250 source frames at 25/1 fps, source 640x272" "$out" || { echo "FAIL: selection line"; fail=1; }
"$exe" probe --max-res 3.5 "$v/bikes.mp4" >"$out" 2>"$err" && { echo "FAIL: --max-res 3.5 accepted"; fail=1; }
[ $fail -eq 0 ] && echo PASS
exit $fail
