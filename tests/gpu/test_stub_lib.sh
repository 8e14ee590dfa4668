#!/usr/bin/env bash
# CTest devcheck_stub_lib: the stand-in libraries of the pipeline bundle (make_stub_lib.py,
# docs/gpu.md "The prepared device check") satisfy a BIND_NOW program's NEEDED entry and symbol
# references, fail loudly (one line naming library and symbol, abort) when called, and a library
# with symbol versions is refused. Needs gcc, readelf, python3; exits 77 (SKIPPED) without.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for t in gcc readelf python3; do
  command -v $t >/dev/null || { echo "SKIPPED: $t not found"; exit 77; }
done
d=$(mktemp -d "${TMPDIR:-/tmp}/dm_stub.XXXXXX")
trap 'rm -rf "$d"' EXIT
fails=0
check() { # check WHAT CONDITION...
  local what=$1
  shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
mkdir -p "$d/real" "$d/stub"
cat >"$d/real.c" <<'EOF'
int dm_real_fn(int x) { return x + 1; }
int dm_real_table[1000000] = {7};
__thread int dm_real_tls;
EOF
cat >"$d/main.c" <<'EOF'
#include <stdio.h>
#include <string.h>
int dm_real_fn(int x);
extern int dm_real_table[1000000];
int main(int argc, char **argv) {
    /* the references exist either way (BIND_NOW resolves them at load) */
    int (*volatile f)(int) = dm_real_fn;
    if (argc > 1 && !strcmp(argv[1], "call")) printf("%d\n", f(1));
    else printf("loaded %d\n", (int)sizeof dm_real_table);
    return 0;
}
EOF
gcc -shared -fPIC -Wl,-soname,libdmreal.so.1 -o "$d/real/libdmreal.so.1" "$d/real.c" || exit 1
ln -s libdmreal.so.1 "$d/real/libdmreal.so"
gcc -o "$d/main" "$d/main.c" -L"$d/real" -ldmreal -Wl,-z,now || exit 1
check "real library: call works" test "$(LD_LIBRARY_PATH=$d/real "$d/main" call)" = 2
python3 "$here/make_stub_lib.py" "$d/real/libdmreal.so.1" "$d/stub" || exit 1
check "stand-in has the SONAME" grep -q 'libdmreal.so.1' <(readelf -d "$d/stub/libdmreal.so.1")
check "stand-in defines the data object with its size" \
  grep -qE ' (4000000|0x3d0900) OBJECT +GLOBAL .* dm_real_table' <(readelf -W --dyn-syms "$d/stub/libdmreal.so.1")
check "the real library holds the 4 MB table" test "$(stat -c %s "$d/real/libdmreal.so.1")" -gt 4000000
check "the stand-in does not (bss)" test "$(stat -c %s "$d/stub/libdmreal.so.1")" -lt 100000
out=$(LD_LIBRARY_PATH=$d/stub "$d/main" 2>&1)
check "BIND_NOW program starts with the stand-in" test "$out" = "loaded 4000000"
(LD_LIBRARY_PATH=$d/stub exec "$d/main" call) >"$d/call.out" 2>"$d/call.err"
rc=$?
check "a call into the stand-in aborts (exit $rc, want 134)" test $rc = 134
check "and says which library and symbol, in one line" \
  test "$(grep -c 'libdmreal.so.1 was left out of the bundle.*dm_real_fn was called' "$d/call.err")" = 1
# a versioned library is refused
echo 'DMV_1 { global: dm_real_fn; local: *; };' >"$d/v.map"
gcc -shared -fPIC -Wl,-soname,libdmver.so.1 -Wl,--version-script="$d/v.map" -o "$d/real/libdmver.so.1" "$d/real.c" || exit 1
python3 "$here/make_stub_lib.py" "$d/real/libdmver.so.1" "$d/stub" 2>"$d/ver.err"
rc=$?
check "a library with symbol versions is refused (exit $rc, want 1)" test $rc = 1
check "and no stand-in is written for it" test ! -e "$d/stub/libdmver.so.1"
[ $fails = 0 ] && echo "PASS" || echo "FAIL: $fails check(s)"
[ $fails = 0 ]
