#!/usr/bin/env python3
"""Makes a stand-in for a shared library that the device check's code path never calls, so that
the pipeline bundle (tests/gpu/prepare_device_check.sh, docs/gpu.md) can leave the real one out.

Debian's FFmpeg (and HDF5, ...) name every codec library as DT_NEEDED and are linked with
BIND_NOW: each NEEDED library must exist and define every symbol its users reference, or the
program does not start. The stand-in has the real library's SONAME and defines each of its
dynamic symbols (from `readelf --dyn-syms`): functions print one line naming the library and the
symbol and abort(), data objects are zero-filled (.bss, the real size), so it costs a few KiB
instead of megabytes. A call into it can therefore never go unnoticed: the dry run
(device_check.sh --dry-run) runs the same job from the bundle with the stand-ins in place.

Only libraries without symbol versioning are accepted (Debian's codec libraries have none);
a library with version definitions is refused (exit 1), as its users' version needs would not
be met.

usage: make_stub_lib.py REAL_LIBRARY OUT_DIR     (writes OUT_DIR/<SONAME>; needs gcc, readelf)
"""
import os
import re
import subprocess
import sys
import tempfile


def readelf(*args):
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True,
                          text=True).stdout


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    real, out_dir = sys.argv[1], sys.argv[2]
    dyn = readelf("-d", real)
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", dyn)
    if not m:
        print(f"make_stub_lib: {real}: no SONAME", file=sys.stderr)
        return 1
    soname = m.group(1)
    if "Version definition section" in readelf("-V", real):
        print(f"make_stub_lib: {real}: has symbol version definitions; not stubbed",
              file=sys.stderr)
        return 1
    funcs, objs, tls = [], [], []
    for line in readelf("--dyn-syms", real).splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(f) < 8 or not f[0].endswith(":") or f[6] in ("UND", "Ndx"):
            continue
        kind, name = f[3], f[7].split("@")[0]
        size = int(f[2], 0)
        if kind in ("FUNC", "IFUNC"):
            funcs.append(name)
        elif kind == "OBJECT":
            objs.append((name, size))
        elif kind == "TLS":
            tls.append((name, size))
    clash = {"fprintf", "abort", "stderr"} & {n for n in funcs + [o for o, _ in objs]}
    if clash:  # the stand-in's own message would call itself
        print(f"make_stub_lib: {real} exports {', '.join(sorted(clash))}; not stubbed",
              file=sys.stderr)
        return 1
    lib = os.path.basename(real)
    src = [
        "#include <stdio.h>",
        "#include <stdlib.h>",
        "static void dm_stub_called(const char *sym) {",
        f'    fprintf(stderr, "device bundle: {soname} was left out of the bundle (stand-in for '
        f'{lib}), but %s was called\\n", sym);',
        "    abort();",
        "}",
    ]
    for i, name in enumerate(funcs):
        src.append(f'void dm_f{i}(void) __asm__("{name}");')
        src.append(f'void dm_f{i}(void) {{ dm_stub_called("{name}"); }}')
    for i, (name, size) in enumerate(objs):
        src.append(f'char dm_o{i}[{max(size, 1)}] __asm__("{name}") '
                   f'__attribute__((aligned(64)));')
    for i, (name, size) in enumerate(tls):
        src.append(f'__thread char dm_t{i}[{max(size, 1)}] __asm__("{name}");')
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, "stub.c")
        with open(c, "w") as fh:
            fh.write("\n".join(src) + "\n")
        subprocess.run(["gcc", "-shared", "-fPIC", "-O0", "-w", f"-Wl,-soname,{soname}",
                        "-o", os.path.join(out_dir, soname), c], check=True)
    print(f"make_stub_lib: {soname}: {len(funcs)} functions, {len(objs) + len(tls)} objects "
          f"(stand-in for {real}, {os.path.getsize(real)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
