#!/usr/bin/env bash
# Runs one libFuzzer harness for a fixed time over its seeds; the CTest "fuzz" tests call it.
# Usage: run_fuzz.sh HARNESS SEEDS_DIR WORK_DIR SECONDS [extra libFuzzer flags...]
#   WORK_DIR/corpus     the growing corpus (kept between runs, so later runs start deeper)
#   WORK_DIR/artifacts  crash-*/leak-*/timeout-*/oom-* inputs when something is found
# Exit status: libFuzzer's (0 = nothing found; non-zero = a crash, leak, timeout or OOM, whose
# input is in WORK_DIR/artifacts and whose stack is in the test log).
# Limits: -timeout=10 s per input (a hang is a finding), -rss_limit_mb=2048, -max_len 64 KiB
# (video seeds are a few KB; larger inputs only slow the run down).
set -uo pipefail
exe=$1
seeds=$2
work=$3
secs=$4
shift 4
mkdir -p "$work/corpus" "$work/artifacts"
# ASan/UBSan: abort on the first UBSan report too (halt_on_error), so it is a failure, not noise.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:halt_on_error=1:print_stacktrace=1"
"$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds" \
    > "$work/last_run.log" 2>&1
rc=$?
# Summary for the CTest log: the stats lines and, on failure, the report around the finding.
grep -E '^stat::|^#[0-9]+ *DONE' "$work/last_run.log"
echo "corpus: $(ls "$work/corpus" | wc -l) inputs; artifacts: $(ls "$work/artifacts" | wc -l)"
if [ $rc -ne 0 ]; then
    echo "=== libFuzzer exit $rc: report follows ==="
    grep -v '^#[0-9]' "$work/last_run.log" | tail -80
fi
exit $rc
