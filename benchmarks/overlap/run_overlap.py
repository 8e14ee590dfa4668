#!/usr/bin/env python3
"""The write/compute overlap of `depthmatte run` (src/pipeline/pl_overlap.c): the same job with
the overlap on (default) and off (DM_OVERLAP=0), side by side in one run.

Usage: benchmarks/overlap/run_overlap.py [--exe build/depthmatte] [--clip CLIP] [--frames 64]
           [--np 2] [--repeat 3] [--threads 1] [--chunk-frames 8] [--compression 6]
           [--work DIR]

Job: RVM matting (alpha + foreground) of the first --frames frames of CLIP (default the 64-frame
lossless 256x144 juggling clip), split over --np ranks, output.chunk_frames --chunk-frames,
gzip level --compression (a compressed collective write is what the overlap can hide). Per
repeat (alternating on / off, so that load drift hits both): wall time of `mpirun ... depthmatte
run` and the /ranks table. Prints one RESULT line per run and the medians per mode:
  wall_s, write_s (max over ranks: check-in + collective write, incl. waiting for the others),
  hidden_s (/ranks write_hidden_s, max over ranks), exposed = write_s - hidden_s, wait_s (decode
  waits), overhead = exposed + wait_s (the frame loop's time not spent computing), frames/s.
The on and off outputs are compared (alpha, foreground bitwise), so the runs do the same work."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

try:  # h5py: a pyenv python may lack it, the system one has it
    import h5py
    import numpy as np
except ImportError:
    if os.path.exists("/usr/bin/python3") and sys.executable != "/usr/bin/python3":
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    raise

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
shared = os.environ.get("DM_SHARED") or os.path.join(root, "..", "shared")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", default=os.path.join(root, "build", "depthmatte"))
    ap.add_argument("--clip", default=os.path.join(shared, "videos/lossless/juggle_256x144_ffv1.mkv"))
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk-frames", type=int, default=8)
    ap.add_argument("--compression", type=int, default=6)
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "dm_overlap"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    env0 = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMP_NUM_THREADS=str(a.threads))
    res = {"on": [], "off": []}
    outs = {}
    for rep in range(a.repeat):
        for mode in ("on", "off"):
            out = os.path.join(a.work, f"overlap_{mode}.h5")
            job = {"inputs": [a.clip], "max_frames": a.frames,
                   "output": {"path": out, "overwrite": True, "chunk_frames": a.chunk_frames,
                              "compression": a.compression},
                   "matting": {"weights": os.path.join(shared, "models/rvm_mobilenetv3.safetensors"),
                               "outputs": ["alpha", "foreground"], "warmup_frames": 4},
                   "plan": {"split_videos": "always", "min_chunk_frames": 4},
                   "runtime": {"threads": a.threads}}
            path = os.path.join(a.work, f"overlap_{mode}.yaml")
            with open(path, "w") as f:
                json.dump(job, f)
            env = dict(env0, DM_OVERLAP="1" if mode == "on" else "0")
            cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(a.np), a.exe,
                   "run", path, "--quiet"]
            t = time.time()
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.time() - t
            if p.returncode:
                sys.exit(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr[-500:]}")
            with h5py.File(out) as f:
                r = {k: f["ranks/" + k][...] for k in ("write_s", "write_hidden_s", "wait_s",
                                                       "frames")}
                outs[mode] = (f["videos/00000/alpha"][...], f["videos/00000/foreground"][...])
            w, h, wt = float(r["write_s"].max()), float(r["write_hidden_s"].max()), float(r["wait_s"].max())
            row = {"wall_s": wall, "write_s": w, "hidden_s": h, "exposed_s": w - h, "wait_s": wt,
                   "overhead_s": w - h + wt, "fps": float(r["frames"].sum()) / wall}
            res[mode].append(row)
            print(f"RESULT overlap mode={mode} rep={rep} np={a.np} " +
                  " ".join(f"{k}={v:.3f}" for k, v in row.items()), flush=True)
    same = all(np.array_equal(x, y) for x, y in zip(outs["on"], outs["off"]))
    print(f"COMPARE overlap on vs off: alpha and foreground bitwise {'equal' if same else 'DIFFERENT'}")
    keys = ["wall_s", "write_s", "hidden_s", "exposed_s", "wait_s", "overhead_s", "fps"]
    print(f"\nmedians over {a.repeat} repeats, np {a.np}, {a.frames} frames, chunk_frames "
          f"{a.chunk_frames}, gzip {a.compression}, threads {a.threads}")
    print("mode " + " ".join(f"{k:>10}" for k in keys))
    for mode in ("on", "off"):
        print(f"{mode:4} " + " ".join(f"{statistics.median(r[k] for r in res[mode]):10.2f}"
                                       for k in keys))
    on = statistics.median(r["wall_s"] for r in res["on"])
    off = statistics.median(r["wall_s"] for r in res["off"])
    print(f"wall off / on = {off / on:.3f} (> 1: the overlap is faster)")
    print(f"uptime: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
