#!/usr/bin/env python3
"""Reads the /ranks table of a depthmatte output file (docs/output.md) and checks what the
device check's pipeline step must show (docs/gpu.md, issue 10 section 1): per rank its host, the
device it ran on (GPU name + UUID on CUDA), its peak device memory, the outputs verified against
the CPU reference (runtime.verify: first_frame) and the non-finite guard's counter; per video
any guard attribute the writer sets (names containing "recomputed" or "nonfinite").

Prints one RESULT line per rank (and per guard attribute) and checks, for --backend:
  cpu       device "cpu", gpu -1, nothing verified, nothing recomputed
  emulated  device "emulated", at least --models outputs verified, verify_s > 0
  cuda      device "<name> GPU-<uuid>", gpu >= 0, peak device memory > 0, at least --models
            outputs verified, verify_s > 0
and in every case frames == --frames (summed over ranks) and, for --precision float32, no
recomputed frame (the guard recomputes in float32 only from float16/bfloat16).
Exit 0 pass, 1 fail.

usage: ranks_h5.py FILE.h5 --backend cpu|emulated|cuda --frames N [--models M]
                   [--precision float32|float16|bfloat16]
"""
import argparse
import re
import sys

import h5py


def text(v):
    return v.decode(errors="replace").rstrip("\0") if isinstance(v, bytes) else str(v)


def main():
    ap = argparse.ArgumentParser(description="Checks the /ranks table of a depthmatte output.")
    ap.add_argument("file")
    ap.add_argument("--backend", required=True, choices=("cpu", "emulated", "cuda"))
    ap.add_argument("--frames", type=int, required=True)
    ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--precision", default="float32")
    a = ap.parse_args()
    fails = []

    def check(cond, what):
        if not cond:
            fails.append(what)

    with h5py.File(a.file, "r") as f:
        if "ranks" not in f:
            print(f"RESULT ranks {a.file}: no /ranks group FAIL")
            return 1
        r = f["ranks"]
        cols = ("rank", "host", "frames", "device", "gpu", "device_peak_mb", "verified_frames",
                "verify_s", "recomputed_frames")
        missing = [c for c in cols if c not in r]
        if missing:
            print(f"RESULT ranks {a.file}: /ranks lacks {', '.join(missing)} FAIL")
            return 1
        n = r["rank"].shape[0]
        frames = 0
        for i in range(n):
            host, dev = text(r["host"][i]), text(r["device"][i])
            gpu, peak = int(r["gpu"][i]), float(r["device_peak_mb"][i])
            ver, ver_s = int(r["verified_frames"][i]), float(r["verify_s"][i])
            rec = int(r["recomputed_frames"][i])
            frames += int(r["frames"][i])
            print(f"RESULT ranks backend={a.backend} precision={a.precision} rank={i} "
                  f"host={host} device=\"{dev}\" gpu={gpu} peak_device_mib={peak:.0f} "
                  f"verified_outputs={ver} verify_s={ver_s:.2f} recomputed_frames={rec}")
            if a.backend == "cpu":
                check(dev == "cpu", f"rank {i}: device {dev!r}, want 'cpu'")
                check(gpu == -1, f"rank {i}: gpu {gpu}, want -1")
                check(ver == 0 and rec == 0, f"rank {i}: verified {ver} / recomputed {rec} on cpu")
            else:
                if a.backend == "emulated":
                    check(dev == "emulated", f"rank {i}: device {dev!r}, want 'emulated'")
                else:
                    m = re.fullmatch(r"(.+) (GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})", dev)
                    check(m is not None, f"rank {i}: device {dev!r} is not '<GPU name> GPU-<uuid>'")
                    check(gpu >= 0, f"rank {i}: gpu {gpu}, want >= 0")
                    check(peak > 0, f"rank {i}: peak device memory {peak} MiB, want > 0")
                check(ver >= a.models, f"rank {i}: {ver} outputs verified against the CPU, "
                      f"want >= {a.models} (runtime.verify: first_frame)")
                check(ver_s > 0, f"rank {i}: verify_s {ver_s}, want > 0")
            if a.precision == "float32":
                check(rec == 0, f"rank {i}: {rec} frames recomputed in float32 by a float32 run")
        check(frames == a.frames, f"{frames} frames written over the ranks, want {a.frames}")
        for vid in f.get("videos", {}):
            for k, v in f["videos"][vid].attrs.items():
                if "recomputed" in k or "nonfinite" in k:
                    print(f"RESULT guard video={vid} {k}={v}")
    for what in fails:
        print(f"RESULT ranks FAIL: {what}")
    print(f"NOTE /ranks ({a.backend}): {n} rank(s) {'PASS' if not fails else 'FAIL'}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
