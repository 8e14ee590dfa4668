#!/usr/bin/env python3
"""Matting + Video Depth Anything in one job (two stages over one decode, src/pipeline/pl_stage.h)
vs the two separate jobs (matting only, then VDA only) back to back, on a real clip.

Usage: benchmarks/stages/run_stages.py [--exe build/depthmatte] [--clip CLIP] [--frames 76]
           [--input-size 518] [--np 1] [--repeat 3] [--threads 2] [--vda-weights FILE]
           [--work DIR]

Per repeat (alternating, so that load drift hits both): the combined job, then the matting job
and the VDA job; wall time of each `mpirun ... depthmatte run` (start-up included: it is part of
what a second job costs). Prints one RESULT line per run and the medians:
  frames/s combined = frames / wall(combined); frames/s separate = frames / (wall(matting) +
  wall(VDA)); ratio = separate wall / combined wall (> 1: the combined job is faster).
The combined and separate outputs are compared (alpha and depth bitwise), so the comparison is
apples to apples. VDA weights: --vda-weights, else recipe weights made by
build/tests/dm_make_recipe_weights from ../shared/golden/vda_vits/recipe.json (the speed does
not depend on the weight values). RVM: ../shared/models/rvm_mobilenetv3.safetensors."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))
shared = os.environ.get("DM_SHARED", os.path.join(root, "..", "shared"))
ap = argparse.ArgumentParser()
ap.add_argument("--exe", default=os.path.join(root, "build", "depthmatte"))
ap.add_argument("--clip", default=os.path.join(shared, "videos", "05_default_juggle.mp4"))
ap.add_argument("--frames", type=int, default=76)
ap.add_argument("--input-size", type=int, default=518)
ap.add_argument("--np", type=int, default=1)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--vda-weights", default="")
ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "dm_bench_stages"))
A = ap.parse_args()
os.makedirs(A.work, exist_ok=True)
wts = A.vda_weights
if not wts:
    wts = os.path.join(A.work, "vda_vits_recipe.safetensors")
    if not os.path.exists(wts):
        tool = os.path.join(os.path.dirname(A.exe), "tests", "dm_make_recipe_weights")
        subprocess.run([tool, os.path.join(shared, "golden", "vda_vits", "recipe.json"), wts],
                       check=True)
rvm = os.path.join(shared, "models", "rvm_mobilenetv3.safetensors")


def job(name, matting, vda):
    out = os.path.join(A.work, f"{name}.h5")
    j = {"inputs": [A.clip], "max_frames": A.frames,
         "output": {"path": out, "overwrite": True},
         "runtime": {"backend": "cpu", "threads": A.threads}}
    if matting:
        j["matting"] = {"weights": rvm, "outputs": ["alpha", "foreground"]}
    if vda:
        j["depth"] = {"model": "vda_vits", "weights": wts, "input_size": A.input_size}
    path = os.path.join(A.work, f"{name}.yaml")
    with open(path, "w") as f:
        json.dump(j, f)
    return path, out


def run(path):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS=str(A.threads))
    t = time.time()
    p = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(A.np),
                        A.exe, "run", path, "--quiet"], env=env, capture_output=True, text=True)
    wall = time.time() - t
    if p.returncode:
        sys.exit(f"run_stages.py: {path}: exit {p.returncode}: {p.stderr.strip()[-400:]}")
    return wall


jobs = {"combined": job("combined", True, True), "matting": job("matting", True, False),
        "vda": job("vda", False, True)}
walls = {k: [] for k in jobs}
print(f"clip {A.clip}, {A.frames} frames, VDA input_size {A.input_size}, {A.np} rank(s) x "
      f"{A.threads} threads; uptime: {os.getloadavg()}")
for r in range(A.repeat):
    for k in ("combined", "matting", "vda"):
        w = run(jobs[k][0])
        walls[k].append(w)
        print(f"RESULT stages run={k} repeat={r} wall_s={w:.2f} fps={A.frames / w:.3f}",
              flush=True)
try:
    import h5py
    import numpy as np
    with h5py.File(jobs["combined"][1]) as c, h5py.File(jobs["matting"][1]) as m, \
            h5py.File(jobs["vda"][1]) as v:
        a = np.array_equal(c["videos/00000/alpha"][...], m["videos/00000/alpha"][...])
        d = np.array_equal(c["videos/00000/depth"][...], v["videos/00000/depth"][...])
        print(f"COMPARE alpha_bitwise={int(a)} depth_bitwise={int(d)}")
except ImportError:
    print("COMPARE skipped (no h5py)")
mc, mm, mv = (statistics.median(walls[k]) for k in ("combined", "matting", "vda"))
print(f"SUMMARY median wall: combined {mc:.2f} s ({A.frames / mc:.3f} frames/s), matting {mm:.2f} s "
      f"+ VDA {mv:.2f} s = {mm + mv:.2f} s ({A.frames / (mm + mv):.3f} frames/s); "
      f"ratio separate/combined {(mm + mv) / mc:.3f}")
