#!/usr/bin/env python3
"""End-to-end tests of `depthmatte run` under mpiexec on real clips (label e2e).

Usage: e2e.py CASE --exe DEPTHMATTE --mpiexec MPIEXEC --shared SHARED_DIR --work WORK_DIR
Cases: consistency, full720p, bad_inputs, keep_going, odd_videos, resume, depth,
depth_model_size, vda, vda_stream, stages, sigterm, crash, device, stall, slow_rank, overlap.
Exit 0 pass, 1 fail, 77 skip (data or h5py missing; printed loudly)."""
import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIP: h5py/numpy not importable by {sys.executable}: {e}")
    sys.exit(77)

A = None
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def shared(rel):
    return os.path.join(A.shared, rel)


def need(*paths):
    for p in paths:
        if not os.path.exists(p):
            print(f"SKIP: {p} missing (shared data folder {A.shared})")
            sys.exit(77)


def write_job(name, inputs, out, **sections):
    """JSON is YAML: a job file from dicts. Every job writes alpha + foreground with RVM."""
    job = {"inputs": inputs,
           "output": {"path": out, "overwrite": True, "chunk_frames": 8},
           "matting": {"weights": shared("models/rvm_mobilenetv3.safetensors"),
                       "outputs": ["alpha", "foreground"]}}
    for k, v in sections.items():
        job.setdefault(k, {}).update(v)
    path = os.path.join(A.work, name + ".yaml")
    with open(path, "w") as f:
        json.dump(job, f, indent=1)
    return path


def run(np_, job, *extra, timeout=400, env_extra=None):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1", **(env_extra or {}))
    cmd = [A.mpiexec, "--oversubscribe", "-np", str(np_), A.exe, "run", job, "--quiet", *extra]
    t = time.time()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        check(False, f"no hang: {' '.join(cmd)} finished within {timeout} s")
        return 124, "", ""
    print(f"  [{time.time() - t:.1f} s, rc {p.returncode}] {' '.join(cmd[3:])}")
    return p.returncode, p.stdout, p.stderr


def ffprobe_frames(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path],
                         capture_output=True, text=True).stdout.strip()
    return int(out.split(",")[0])


def chunk_starts(job, ranks, *extra):
    """Chunk table from `depthmatte plan` (begin of every chunk of video 0 except frame 0)."""
    p = subprocess.run([A.exe, "plan", job, "--ranks", str(ranks), *extra], capture_output=True,
                       text=True)
    rows, starts = False, []
    for line in p.stdout.splitlines():
        if line.split()[:2] == ["chunk", "rank"]:
            rows = True
        elif rows:
            c = line.split()
            starts.append((int(c[3]), int(c[5])))  # begin, context_begin
    return sorted(s for s in starts if s[0] > 0)


def s(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def sha256sum(path):
    """The coreutils tool, independent of the program's own (OpenSSL) hashing."""
    return subprocess.run(["sha256sum", path], capture_output=True, text=True,
                          check=True).stdout.split()[0]


# --------------------------------------------------------------------------------------------
def case_consistency():
    """64-frame lossless juggling clip on 1, 2 and 3 ranks (video split on every rank)."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    need(clip, shared("models/rvm_mobilenetv3.safetensors"))
    warm = 8
    outs = {}
    for n in (1, 2, 3):
        out = os.path.join(A.work, f"cons_np{n}.h5")
        job = write_job(f"cons_np{n}", [clip], out,
                        matting={"warmup_frames": warm},
                        plan={"split_videos": "always", "min_chunk_frames": 8})
        rc, _, err = run(n, job)
        check(rc == 0, f"np {n}: exit 0 ({err.strip()[-300:]})")
        outs[n] = (out, job)
    T = ffprobe_frames(clip)
    with h5py.File(outs[1][0]) as f1:
        ref_a = f1["videos/00000/alpha"][...].astype(np.int32)
        ref_f = f1["videos/00000/foreground"][...].astype(np.int32)
        check(ref_a.shape == (T, 144, 256), f"np 1: alpha shape {ref_a.shape}, ffprobe frames {T}")
    for n in (1, 2, 3):
        with h5py.File(outs[n][0]) as f:
            g = f["videos/00000"]
            check(int(f.attrs["complete"]) == 1 and s(g.attrs["status"]) == "ok",
                  f"np {n}: complete, status ok")
            check(int(g.attrs["frames"]) == T and g["alpha"].shape[0] == T, f"np {n}: {T} frames")
            check(bool(np.all(g["done"][...] == 1)), f"np {n}: every done marker set")
            check(int(f["ranks/frames"][...].sum()) == T, f"np {n}: /ranks frames sum to {T}")
            if n == 1:
                continue
            a = g["alpha"][...].astype(np.int32)
            fg = g["foreground"][...].astype(np.int32)
            starts = chunk_starts(outs[n][1], n)
            check(len(starts) == n - 1, f"np {n}: plan splits the video at {starts}")
            first = starts[0][0]
            # Rows before the first split come from a chunk that starts cold at frame 0, as the
            # sequential run does: bit-identical. A context frame written by the next chunk
            # would overwrite some of them with other values.
            check(np.array_equal(a[:first], ref_a[:first]) and np.array_equal(fg[:first], ref_f[:first]),
                  f"np {n}: rows [0, {first}) identical to np 1 (context frames never written)")
            for b, cb in starts:
                d = np.abs(a[b:] - ref_a[b:])
                per_frame = d.reshape(d.shape[0], -1).max(axis=1)
                print(f"  np {n}: chunk at {b} (context from {cb}): max |alpha diff| per frame "
                      f"(uint8) {per_frame[:12].tolist()} ... mean {d.mean():.4f}")
            d = np.abs(a - ref_a)
            dmax, dmean, dfrac = int(d.max()), float(d.mean()), float((d > 8).mean())
            print(f"  np {n}: alpha vs np 1 over all frames: max {dmax}/255, mean {dmean:.4f}/255, "
                  f"pixels > 8/255: {dfrac:.5f}")
            check(dmax <= ALPHA_MAX_DIFF and dmean <= ALPHA_MEAN_DIFF and dfrac <= ALPHA_FRAC_OVER_8,
                  f"np {n}: alpha difference after warm-up: max {dmax} <= {ALPHA_MAX_DIFF}, mean "
                  f"{dmean:.4f} <= {ALPHA_MEAN_DIFF}, fraction > 8: {dfrac:.5f} <= {ALPHA_FRAC_OVER_8}")


# Bounds on |alpha(np N) - alpha(np 1)| in uint8 steps, 8 warm-up frames, 64-frame lossless
# juggling clip split by src/plan at 32 (np 2) and at 22, 43 (np 3). RVM's recurrent state has
# a long memory, so a few pixels at the juggler's edges stay far off while the matte as a whole
# agrees. MEASURED (CPU backend, OMP_NUM_THREADS=1): max 180 (np 2) / 158 (np 3); mean
# 0.091 / 0.155; fraction of pixels off by more than 8 steps 0.0031 / 0.0057. Bounds: the
# measured worst case plus ~10 % on the max, < 2x on mean and fraction (thread-count /
# platform noise of a recurrent network). DESIGN.md's cold-start figures on the 720p clip
# (max 0.9 = 230 steps, mean 0.005 = 1.3 steps; not re-measured here) are above these bounds.
ALPHA_MAX_DIFF = 200
ALPHA_MEAN_DIFF = 0.25
ALPHA_FRAC_OVER_8 = 0.01


def case_full720p():
    """The 720p juggling clip, first 40 frames, one rank, at source size (RVM auto ratio)."""
    clip = shared("videos/05_default_juggle.mp4")
    need(clip, shared("models/rvm_mobilenetv3.safetensors"))
    out = os.path.join(A.work, "j720.h5")
    job = write_job("j720", [clip], out)
    rc, _, err = run(1, job, "--max-frames", "40")
    check(rc == 0, f"exit 0 ({err.strip()[-300:]})")
    with h5py.File(out) as f:
        g = f["videos/00000"]
        check(int(f.attrs["complete"]) == 1, "complete")
        check(g["alpha"].shape == (40, 720, 1280) and g["foreground"].shape == (40, 720, 1280, 3),
              f"shapes {g['alpha'].shape}")
        check(bool(np.all(g["done"][...] == 1)), "every done marker set")
        check(int(g.attrs["fps_num"]) == 24 and s(g.attrs["codec"]) == "h264", "fps, codec attrs")
        check(int(g.attrs["stream_index"]) == 0, "stream_index attr (ffprobe: stream 0)")
        pts = g["time_s"][...]
        check(bool(np.all(np.diff(pts) > 0)) and abs(pts[1] - pts[0] - 1 / 24) < 1e-3,
              f"time_s increasing at 1/24 s ({pts[:3]})")
        a = g["alpha"][-1] / 255.0
        # Sanity of a full-body person matte (golden README section 4: mean 0.085, 8.5 % > 0.5
        # at 512x288 on frames 42-65): broad bounds, a wrong colour conversion or an empty
        # matte falls outside them.
        print(f"  last frame alpha: mean {a.mean():.4f}, > 0.5: {(a > 0.5).mean():.4f}, "
              f"< 0.05: {(a < 0.05).mean():.4f}")
        check(0.03 < a.mean() < 0.2 and 0.03 < (a > 0.5).mean() < 0.2 and (a < 0.05).mean() > 0.75,
              "alpha looks like a person matte")
    check(ffprobe_frames(clip) == 247, "ffprobe sees 247 frames (the job took the first 40)")


def one_error_line(err, name):
    lines = [l for l in err.splitlines() if l.startswith("depthmatte:")]
    ok = len(lines) == 1 and name in lines[0]
    return ok, lines


def truncated_weights():
    p = os.path.join(A.work, "rvm_truncated.safetensors")
    with open(shared("models/rvm_mobilenetv3.safetensors"), "rb") as f:
        data = f.read()
    with open(p, "wb") as f:
        f.write(data[: len(data) // 2])
    return p


def wrong_shape_weights():
    """Same bytes, one tensor's declared shape changed to another shape of the same size."""
    with open(shared("models/rvm_mobilenetv3.safetensors"), "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    name = "backbone.features.0.0.weight"  # (16, 3, 3, 3)
    check(hdr[name]["shape"] == [16, 3, 3, 3], f"{name} has the expected shape in the file")
    hdr[name]["shape"] = [16, 3, 9, 1]
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    p = os.path.join(A.work, "rvm_wrong_shape.safetensors")
    with open(p, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data[8 + n:])
    return p


def case_bad_inputs():
    """Each bad input: exit non-zero, one line naming the file, no hang (2 ranks)."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    need(clip, shared("models/rvm_mobilenetv3.safetensors"))
    text = os.path.join(A.work, "notavideo.mp4")
    with open(text, "w") as f:
        f.write("this is not a video\n" * 100)
    missing = os.path.join(A.work, "missing.mp4")
    out = os.path.join(A.work, "bad.h5")
    cases = [
        ("missing video", write_job("missing", [missing], out), "missing.mp4"),
        ("non-video file", write_job("text", [text], out), "notavideo.mp4"),
        ("missing weights", write_job("nowt", [clip], out, matting={"weights": os.path.join(A.work, "none.safetensors")}), "none.safetensors"),
        ("truncated weights", write_job("trunc", [clip], out, matting={"weights": truncated_weights()}), "rvm_truncated.safetensors"),
        ("wrong-shape weights", write_job("shape", [clip], out, matting={"weights": wrong_shape_weights()}), "backbone.features.0.0.weight"),
        ("unwritable output", write_job("unwr", [clip], "/nonexistent-dir/out.h5"), "/nonexistent-dir/out.h5"),
    ]
    bad_yaml = os.path.join(A.work, "bad_yaml.yaml")
    with open(bad_yaml, "w") as f:
        f.write("inputs: [a.mp4\noutput: {path: x.h5\n")
    cases.append(("bad YAML", bad_yaml, "bad_yaml.yaml"))
    unknown = os.path.join(A.work, "unknown_key.yaml")
    with open(unknown, "w") as f:
        f.write(f"inputs: [{clip}]\noutput: {{path: {out}}}\nmatting: {{weights: x, bogus: 1}}\n")
    cases.append(("unknown key", unknown, "bogus"))
    for what, job, name in cases:
        rc, _, err = run(2, job, "--max-frames", "4", timeout=120)
        ok, lines = one_error_line(err, name)
        check(rc not in (0, 124) and ok, f"{what}: exit {rc}, one line naming {name}: {lines}")
        check(not os.path.exists(out), f"{what}: no output file (errors come before any work)")
        if os.path.exists(out):
            os.remove(out)
    # An existing output without --resume or output.overwrite is refused before any work.
    job = write_job("exists", [clip], out, output={"overwrite": False})
    with open(out, "w") as f:
        f.write("old")
    rc, _, err = run(2, job, "--max-frames", "4", timeout=120)
    ok, lines = one_error_line(err, "bad.h5")
    check(rc != 0 and ok and "exists" in err, f"existing output: exit {rc}, {lines}")
    check(open(out).read() == "old", "existing output left untouched")


def case_keep_going():
    """--keep-going: the good video completes, the bad ones are recorded failed, exit 2."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    need(clip, shared("models/rvm_mobilenetv3.safetensors"))
    text = os.path.join(A.work, "notavideo.mp4")
    with open(text, "w") as f:
        f.write("not a video\n")
    missing = os.path.join(A.work, "missing.mp4")
    out = os.path.join(A.work, "kg.h5")
    job = write_job("kg", [missing, clip, text], out)
    rc, _, err = run(2, job, "--keep-going", "--max-frames", "16", timeout=200)
    check(rc == 2, f"exit status 2 with failed videos (got {rc}; {err.strip()[-300:]})")
    with h5py.File(out) as f:
        check(int(f.attrs["complete"]) == 0 and int(f.attrs["failed_videos"]) == 2,
              "complete 0, failed_videos 2")
        g = f["videos/00001"]
        check(s(g.attrs["status"]) == "ok" and bool(np.all(g["done"][...] == 1))
              and g["alpha"].shape[0] == 16, "good video complete")
        want = sha256sum(shared("models/rvm_mobilenetv3.safetensors"))
        for ds in ("alpha", "foreground"):
            got = s(g[ds].attrs["weights_sha256"])
            check(got == want, f"{ds} weights_sha256 {got} == sha256sum {want}")
        for vid, name in (("00000", "missing.mp4"), ("00002", "notavideo.mp4")):
            g = f["videos/" + vid]
            e = s(g.attrs["error"])
            check(s(g.attrs["status"]) == "failed" and name in e, f"{vid} failed: {e}")


def case_odd_videos():
    """Every file of videos/odd through the pipeline (--keep-going, 2 ranks, first 6 frames):
    each ends processed (status ok, all rows done) or failed with a message naming it."""
    odd = shared("videos/odd")
    need(odd, shared("models/rvm_mobilenetv3.safetensors"))
    files = sorted(os.path.join(odd, n) for n in os.listdir(odd))
    out = os.path.join(A.work, "odd.h5")
    job = write_job("odd", files, out)
    rc, _, err = run(2, job, "--keep-going", "--max-frames", "6", timeout=500)
    check(rc in (0, 2), f"exit {rc} (0, or 2 when some failed)")
    with h5py.File(out) as f:
        for i, path in enumerate(files):
            g = f[f"videos/{i:05d}"]
            st, e = s(g.attrs["status"]), s(g.attrs["error"])
            base = os.path.basename(path)
            if st == "ok":
                T = int(g.attrs["frames"])
                ok = T >= 1 and bool(np.all(g["done"][...] == 1)) and g["alpha"].shape[0] == T
                check(ok, f"{base}: ok, {T} frames {g['alpha'].shape[1:]} all done")
            else:
                check(st == "failed" and base in e, f"{base}: failed with message: {e}")
        check(rc == (2 if int(f.attrs["failed_videos"]) else 0), "exit status matches failures")


def case_resume():
    """--resume after a partial run restores exactly the missing rows; mismatches refused."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    need(clip, shared("models/rvm_mobilenetv3.safetensors"))
    out = os.path.join(A.work, "res.h5")
    job = write_job("res", [clip], out, output={"overwrite": False},
                    plan={"split_videos": "always", "min_chunk_frames": 8},
                    matting={"warmup_frames": 4})
    rc, _, err = run(2, job, "--max-frames", "24")
    check(rc == 0, f"first run exit 0 ({err.strip()[-200:]})")
    with h5py.File(out, "r+") as f:
        g = f["videos/00000"]
        ref = g["alpha"][...]
        # Simulate a crash: rows 12..23 (the second rank's chunk) not done, garbage data.
        g["done"][12:] = 0
        g["alpha"][12:] = 7
        f.attrs["complete"] = 0
    rc, _, err = run(2, job, "--max-frames", "24")
    check(rc != 0 and "exists" in err, "existing file without --resume refused")
    rc, _, err = run(2, job, "--max-frames", "24", "--resume")
    check(rc == 0, f"resume exit 0 ({err.strip()[-200:]})")
    with h5py.File(out) as f:
        g = f["videos/00000"]
        check(int(f.attrs["complete"]) == 1 and bool(np.all(g["done"][...] == 1)), "complete again")
        check(np.array_equal(g["alpha"][...], ref), "resumed rows identical to the first run")
    rc, _, err = run(2, job, "--max-frames", "20", "--resume")
    ok, lines = one_error_line(err, "res.h5")
    check(rc != 0 and ok and "resume mismatch" in err, f"other frame count refused: {lines}")


def recipe_weights(model):
    """Deterministic recipe weights of golden/MODEL/recipe.json (golden README section 1: only
    the arithmetic is official), written with dm_make_recipe_weights; skips loudly without it."""
    recipe = shared(f"golden/{model}/recipe.json")
    need(recipe)
    if not A.recipe_tool or not os.path.exists(A.recipe_tool):
        print("SKIP: dm_make_recipe_weights not built")
        sys.exit(77)
    wts = os.path.join(A.work, f"{model}_recipe.safetensors")
    subprocess.run([A.recipe_tool, recipe, wts], check=True)
    return wts


def case_rvm_resnet50():
    """matting.model rvm_resnet50 (recipe weights of golden/rvm_r50): the worker loads the
    ResNet50 variant (alpha differs from MobileNetV3's, model attribute rvm_resnet50), a video
    split over 2 ranks with warm-up back to frame 0 is bitwise the 1-rank run, and MobileNetV3
    weights given for rvm_resnet50 are refused with one line naming the file (no output left)."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    need(clip, shared("models/rvm_mobilenetv3.safetensors"))
    wts = recipe_weights("rvm_r50")
    outs = {}
    for tag, n, model, w in (("np1", 1, "rvm_resnet50", wts), ("np2", 2, "rvm_resnet50", wts),
                             ("mbv3", 1, "rvm_mobilenetv3", shared("models/rvm_mobilenetv3.safetensors"))):
        out = os.path.join(A.work, f"r50_{tag}.h5")
        job = write_job(f"r50_{tag}", [clip], out,
                        matting={"model": model, "weights": w, "warmup_frames": 8},
                        plan={"split_videos": "always", "min_chunk_frames": 3})
        rc, _, err = run(n, job, "--max-frames", "6")
        check(rc == 0, f"{tag}: exit 0 ({err.strip()[-300:]})")
        outs[tag] = out
    with h5py.File(outs["np1"]) as f1, h5py.File(outs["np2"]) as f2, h5py.File(outs["mbv3"]) as f3:
        a1 = f1["videos/00000/alpha"]
        check(a1.shape[0] == 6 and a1.shape[1:3] == (144, 256), f"alpha shape {a1.shape}")
        check(s(a1.attrs["model"]) == "rvm_resnet50", f"alpha model attribute {s(a1.attrs['model'])}")
        check(s(a1.attrs["weights_sha256"]) == sha256sum(wts), "alpha weights_sha256 = sha256sum")
        x1, x2, x3 = a1[...], f2["videos/00000/alpha"][...], f3["videos/00000/alpha"][...]
        check(float(np.std(x1.astype(np.float64))) > 0, "alpha not constant")
        check(np.array_equal(x1, x2), "1 rank and 2 ranks (split, warm-up from frame 0) identical")
        check(not np.array_equal(x1, x3), "ResNet50 alpha differs from MobileNetV3 alpha")
        check(np.array_equal(f1["videos/00000/foreground"][...], f2["videos/00000/foreground"][...]),
              "foreground identical on 1 and 2 ranks")
    bad_out = os.path.join(A.work, "r50_bad.h5")
    if os.path.exists(bad_out):
        os.remove(bad_out)
    mbv3 = shared("models/rvm_mobilenetv3.safetensors")
    job = write_job("r50_bad", [clip], bad_out, matting={"model": "rvm_resnet50", "weights": mbv3})
    rc, _, err = run(2, job, "--max-frames", "2")
    check(rc != 0, f"MobileNetV3 weights as rvm_resnet50: exit {rc} != 0")
    ok, lines = one_error_line(err, mbv3)
    check(ok, f"one error line naming {mbv3}: {lines}")
    check("MobileNetV3" in err and "ResNet50" in err, "the error names both variants")
    check(not os.path.exists(bad_out), "no output file left under the final name")


def case_depth():
    """DA-V2 per frame (synthetic recipe weights: only the arithmetic is official, golden README
    section 1): depth needs no context, so 1, 2 and 3 ranks (video split) give bitwise identical rows."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    need(clip)
    wts = recipe_weights("da2_vits")
    outs = []
    for n in (1, 2, 3):
        out = os.path.join(A.work, f"depth_np{n}.h5")
        # The frame limit comes from the job's max_frames key (no CLI flag).
        job = {"inputs": [clip], "max_frames": 12, "output": {"path": out, "chunk_frames": 4},
               "depth": {"weights": wts, "input_size": 70, "dtype": "float32"},
               "plan": {"split_videos": "always", "min_chunk_frames": 4}}
        path = os.path.join(A.work, f"depth_np{n}.yaml")
        with open(path, "w") as f:
            json.dump(job, f)
        rc, _, err = run(n, path)
        check(rc == 0, f"np {n}: exit 0 ({err.strip()[-300:]})")
        outs.append(out)
    with h5py.File(outs[0]) as f1, h5py.File(outs[1]) as f2, h5py.File(outs[2]) as f3:
        d1, d2 = f1["videos/00000/depth"], f2["videos/00000/depth"]
        check(d1.shape == (12, 144, 256) and d1.dtype == np.float32, f"depth {d1.shape} {d1.dtype}")
        check("alpha" not in f1["videos/00000"], "no matting datasets when matting is off")
        check(s(d1.attrs["model"]) == "depth_anything_v2_small" and "inverse" in s(d1.attrs["kind"]),
              "depth attributes")
        want, got = sha256sum(wts), s(d1.attrs["weights_sha256"])
        check(got == want and s(d2.attrs["weights_sha256"]) == want,
              f"depth weights_sha256 {got} == sha256sum {want}")
        a, b = d1[...], d2[...]
        check(bool(np.all(np.isfinite(a))) and float(a.std()) > 0, f"finite, non-constant depth (std {a.std():.4g})")
        check(np.array_equal(a, b), "depth identical on 1 and 2 ranks")
        check(np.array_equal(a, f3["videos/00000/depth"][...]), "depth identical on 1 and 3 ranks")
        check(bool(np.all(f2["videos/00000/done"][...] == 1)), "np 2: every done marker set")
        check(bool(np.all(f3["videos/00000/done"][...] == 1)), "np 3: every done marker set")
    # runtime.batch_size 4 (frames per forward, batches cut at block ends): the rows equal the
    # batch-1 rows within float32 rounding (GEMM blocking by row count: another summation order),
    # on 2 ranks, at source and at model size. Bound: the float32 network bound of
    # src/nn/tolerance.c section 3 (1e-4 * std, runtime.verify's for a float32 device), whose
    # derivation counts DA-V2's own float32 noise between two valid summation orders at up to
    # 1.1e-5 * std; the former 1e-5 sat below that and failed under the sanitizer build on a
    # CPU with other OpenBLAS kernels (model size 1.09e-5, 2026-12-02, at a5bfa8c too). A wrong
    # batch slicing or frame order moves rows by O(1) * std.
    F32_NET_STD = 1e-4
    for size in ("source", "model"):
        outs_b = []
        for bs in (1, 4):
            out = os.path.join(A.work, f"depth_{size}_b{bs}.h5")
            job = {"inputs": [clip], "max_frames": 12, "output": {"path": out, "chunk_frames": 5},
                   "depth": {"weights": wts, "input_size": 70, "dtype": "float32",
                             "output_size": size},
                   "runtime": {"batch_size": bs},
                   "plan": {"split_videos": "always", "min_chunk_frames": 4}}
            path = os.path.join(A.work, f"depth_{size}_b{bs}.yaml")
            with open(path, "w") as f:
                json.dump(job, f)
            rc, _, err = run(2, path)
            check(rc == 0, f"batch {bs} {size}: exit 0 ({err.strip()[-300:]})")
            outs_b.append(out)
        with h5py.File(outs_b[0]) as f1, h5py.File(outs_b[1]) as f4:
            a, b = f1["videos/00000/depth"][...], f4["videos/00000/depth"][...]
            d = float(np.abs(a - b).max()) / float(a.std())
            check(a.shape == b.shape and d <= F32_NET_STD and
                  bool(np.all(f4["videos/00000/done"][...] == 1)),
                  f"batch 4 vs 1 ({size} size): max {d:.3g} * std (bound {F32_NET_STD:g})")


def da2_model_dims(h, w, input_size):
    """Network input size by the official rule as golden/README.md states it (image2tensor's
    Resize: keep aspect ratio, lower bound, multiple of 14), written here from the text, not
    from our C code: s = max(input_size/h, input_size/w); h' = round(s*h/14)*14 (NumPy round,
    half to even), replaced by ceil(s*h/14)*14 when below input_size; same for w'."""
    sc = max(input_size / h, input_size / w)

    def side(x):
        y = int(np.round(sc * x / 14) * 14)
        return y if y >= input_size else int(np.ceil(sc * x / 14) * 14)
    return side(h), side(w)


def resize_bilinear_ac(d, H, W):
    """F.interpolate(mode='bilinear', align_corners=True) of (T, h, w) to (T, H, W), float64."""
    T, h, w = d.shape
    def taps(n_in, n_out):
        src = np.arange(n_out) * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0
    y0, y1, ly = taps(h, H)
    x0, x1, lx = taps(w, W)
    d = d.astype(np.float64)
    rows = d[:, y0, :] * (1 - ly)[None, :, None] + d[:, y1, :] * ly[None, :, None]
    return rows[:, :, x0] * (1 - lx)[None, None, :] + rows[:, :, x1] * lx[None, None, :]


def case_depth_model_size():
    """depth.output_size: model (DA-V2, synthetic recipe weights): rows are the DPT head output
    on the network input grid (T, h, w); bitwise equal on 1 and 2 ranks; resized bilinearly
    (align_corners) to the source they match the output_size: source run; a --resume with the
    other size is refused; VDA with model size is refused."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    need(clip)
    wts = recipe_weights("da2_vits")
    T, H, W, size = 12, 144, 256, 70
    h, w = da2_model_dims(H, W, size)

    def job(name, output_size, model="da2_vits"):
        out = os.path.join(A.work, name + ".h5")
        j = {"inputs": [clip], "max_frames": T, "output": {"path": out, "chunk_frames": 4},
             "depth": {"model": model, "weights": wts, "input_size": size, "dtype": "float32",
                       "output_size": output_size},
             "plan": {"split_videos": "always", "min_chunk_frames": 4}}
        path = os.path.join(A.work, name + ".yaml")
        with open(path, "w") as f:
            json.dump(j, f)
        return path, out

    runs = {}
    for name, n, osz in (("src_np1", 1, "source"), ("model_np1", 1, "model"),
                         ("model_np2", 2, "model")):
        path, out = job(name, osz)
        rc, _, err = run(n, path)
        check(rc == 0, f"{name}: exit 0 ({err.strip()[-300:]})")
        runs[name] = (path, out)
    with h5py.File(runs["src_np1"][1]) as fs, h5py.File(runs["model_np1"][1]) as f1, \
            h5py.File(runs["model_np2"][1]) as f2:
        ds, d1, d2 = (f["videos/00000/depth"] for f in (fs, f1, f2))
        check(d1.shape == (T, h, w) and d1.dtype == np.float32,
              f"model-size depth {d1.shape} == {(T, h, w)} (official sizing rule)")
        check(ds.shape == (T, H, W), f"source-size depth {ds.shape}")
        check(s(d1.attrs["size"]) == "model" and int(d1.attrs["input_height"]) == h and
              int(d1.attrs["input_width"]) == w and s(ds.attrs["size"]) == "source",
              "depth attrs size / input_height / input_width")
        check(s(d1.attrs["model"]) == "depth_anything_v2_small", "depth model attr kept")
        a, b, src = d1[...], d2[...], ds[...]
        check(bool(np.all(np.isfinite(a))) and float(a.std()) > 0 and float(a.min()) >= 0,
              f"finite, non-negative (ReLU), non-constant (std {a.std():.4g})")
        check(np.array_equal(a, b), "model-size depth bitwise identical on 1 and 2 ranks")
        check(bool(np.all(f2["videos/00000/done"][...] == 1)), "np 2: every done marker set")
        # The source-size rows are the same head output resized in float32 by our CPU op
        # (coordinates computed in double, rounded to float). Bound of the difference to this
        # float64 resize: coordinate rounding <= half an ulp of a coordinate < 256, i.e.
        # 2**-17 ~ 7.6e-6 px, times the largest step between neighbours (<= max|d|, as d >= 0),
        # plus ~4 float32 roundings of the interpolation (4 * 2**-24 * max|d| ~ 2.4e-7 max|d|):
        # ~8e-6 * max|d|. Tolerance 2e-5 * max|d| keeps a 2.5x margin; a missed or shifted
        # resize (or a wrong grid) gives errors of the order of the depth's std.
        r = resize_bilinear_ac(a, H, W)
        err_abs = float(np.max(np.abs(r - src)))
        scale = float(np.max(np.abs(src)))
        print(f"  resize(model) vs source: max abs {err_abs:.3g}, max|d| {scale:.4g}, "
              f"ratio {err_abs / scale:.3g}, std {src.std():.4g}")
        check(err_abs <= 2e-5 * scale, f"bilinear resize of model-size rows == source-size rows "
              f"(max abs {err_abs:.3g} <= 2e-5 * {scale:.4g})")
    # --resume of the model-size file with output_size source: refused, naming both sizes.
    path, out = runs["model_np1"]
    rc, _, err = run(1, path, "--resume", "--set", "depth.output_size=source")
    ok, lines = one_error_line(err, "model_np1.h5")
    check(rc != 0 and ok and "resume mismatch" in err and f"{w}x{h}" in err and f"{W}x{H}" in err,
          f"resume with another depth size refused: {lines}")
    # Model size is a DA-V2 feature: VDA jobs are refused at setup with a clear message.
    path, _ = job("vda_model", "model", model="vda_vits")
    rc, _, err = run(1, path)
    check(rc != 0 and "depth.output_size: model is only supported with depth.model da2_vits"
          in err, f"vda_vits + output_size model refused ({err.strip()[-200:]})")


def start(np_, job, *extra):
    """Starts mpiexec without --quiet; returns the Popen (stdout piped, stderr to a file)."""
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    cmd = [A.mpiexec, "--oversubscribe", "-np", str(np_), A.exe, "run", job, *extra]
    err = open(os.path.join(A.work, "stderr.txt"), "w")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)


def wait_progress(p, timeout=300):
    """Reads rank 0's stdout until its first progress line ("N/T frames"): by then at least one
    write round is on disk. Returns the line, or None when the run ended first."""
    t = time.time()
    for line in p.stdout:
        if " frames (" in line:
            return line.strip()
        if time.time() - t > timeout:
            break
    return None


def rank_pids(p):
    """The rank processes: children of mpiexec (Open MPI starts local ranks directly)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            if int(st.rsplit(")", 1)[1].split()[1]) == p.pid:
                pids.append(int(d))
    return sorted(pids)


def interrupted_job(name, T):
    """64-frame lossless clip split over the ranks, small write blocks (4 rows), 4 warm-up
    frames: many rounds, so an interruption lands mid-run."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    need(clip, shared("models/rvm_mobilenetv3.safetensors"))
    out = os.path.join(A.work, name + ".h5")
    job = write_job(name, [clip], out, output={"chunk_frames": 4, "overwrite": False},
                    plan={"split_videos": "always", "min_chunk_frames": 4},
                    matting={"warmup_frames": 4})
    with open(job) as f:
        j = json.load(f)
    j["max_frames"] = T
    with open(job, "w") as f:
        json.dump(j, f)
    return job, out


def check_partial(out, ref, job, np_, T, what):
    """After an interruption: h5py opens the file, complete 0, inside every chunk the done rows
    are a prefix of the chunk, and every done row equals the uninterrupted run bit for bit.
    Returns the number of done rows."""
    try:
        f = h5py.File(out, "r")
    except Exception as e:  # noqa: BLE001 - any failure to open is the finding
        check(False, f"{what}: h5py opens the file after the interruption ({e})")
        return -1
    with f:
        g = f["videos/00000"]
        done = g["done"][...].astype(bool)
        check(int(f.attrs["complete"]) == 0, f"{what}: complete = 0")
        cuts = [0] + [b for b, _ in chunk_starts(job, np_)] + [T]
        prefix = all(not np.any(done[a:b][1:] & ~done[a:b][:-1]) for a, b in zip(cuts, cuts[1:]))
        print(f"  {what}: chunks {cuts}, done {''.join('1' if x else '0' for x in done)}")
        check(prefix, f"{what}: done rows form a prefix of every chunk")
        check(0 < done.sum() < T, f"{what}: some but not all rows done ({done.sum()}/{T})")
        same = (np.array_equal(g["alpha"][...][done], ref[0][done])
                and np.array_equal(g["foreground"][...][done], ref[1][done]))
        check(same, f"{what}: every done row equals the uninterrupted run")
        return int(done.sum())


def reference(job, np_, out):
    ref_out = out.replace(".h5", "_ref.h5")
    rc, _, err = run(np_, job, "--set", f"output.path={ref_out}")
    check(rc == 0, f"uninterrupted np {np_}: exit 0 ({err.strip()[-200:]})")
    with h5py.File(ref_out) as f:
        return f["videos/00000/alpha"][...], f["videos/00000/foreground"][...]


def resume_and_compare(job, np_, out, ref, what):
    rc, _, err = run(np_, job, "--resume")
    check(rc == 0, f"{what}: --resume exit 0 ({err.strip()[-200:]})")
    with h5py.File(out) as f:
        g = f["videos/00000"]
        check(int(f.attrs["complete"]) == 1 and bool(np.all(g["done"][...] == 1)),
              f"{what}: complete after --resume")
        check(np.array_equal(g["alpha"][...], ref[0])
              and np.array_equal(g["foreground"][...], ref[1]),
              f"{what}: resumed file bit-identical to the uninterrupted run (alpha, foreground)")


def case_sigterm():
    """SIGTERM to every rank mid-run (what Slurm does before the time limit): exit status 3,
    rows in flight finished and marked done, file closed; --resume completes it exactly."""
    T, np_ = 64, 2
    job, out = interrupted_job("term", T)
    ref = reference(job, np_, out)
    p = start(np_, job)
    line = wait_progress(p)
    check(line is not None, f"a progress line before the end: {line}")
    pids = rank_pids(p)
    check(len(pids) == np_, f"{np_} rank processes under mpiexec: {pids}")
    t = time.time()
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    try:
        rc = p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = 124
    p.stdout.read()
    err = open(os.path.join(A.work, "stderr.txt")).read()
    print(f"  stopped {time.time() - t:.1f} s after SIGTERM, rc {rc}")
    check(rc == 3, f"exit status 3 after SIGTERM (got {rc}; {err.strip()[-300:]})")
    check("--resume" in err, "the stop message names --resume")
    check_partial(out, ref, job, np_, T, "SIGTERM")
    resume_and_compare(job, np_, out, ref, "SIGTERM")


# SIGKILL of one rank: Open MPI notices the dead rank and kills the others. MEASURED: ~2 s from
# the kill to mpiexec's exit (3 ranks, 2 cores). Bound 60 s: generous for a loaded CI machine,
# still catches a hang in a collective (which would last until the test timeout).
CRASH_EXIT_BOUND_S = 60


def case_crash():
    """SIGKILL one of 3 ranks mid-run: the job ends promptly, the file stays readable, the done
    rows are exact, --resume completes it bit-identically (docs/output.md "Crash safety")."""
    T, np_ = 64, 3
    job, out = interrupted_job("crash", T)
    ref = reference(job, np_, out)
    p = start(np_, job)
    line = wait_progress(p)
    check(line is not None, f"a progress line before the end: {line}")
    pids = rank_pids(p)
    check(len(pids) == np_, f"{np_} rank processes under mpiexec: {pids}")
    t = time.time()
    os.kill(pids[1], signal.SIGKILL)
    try:
        rc = p.wait(timeout=300)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = 124
    dt = time.time() - t
    p.stdout.read()
    print(f"  job ended {dt:.1f} s after SIGKILL of one rank, rc {rc}")
    check(rc != 0 and dt <= CRASH_EXIT_BOUND_S,
          f"job ends with an error within {CRASH_EXIT_BOUND_S} s ({dt:.1f} s, rc {rc})")
    def alive(q):
        try:
            with open(f"/proc/{q}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    # mpiexec may return while a killed rank is still being torn down: allow a few seconds.
    t = time.time()
    while any(alive(q) for q in pids) and time.time() - t < 10:
        time.sleep(0.2)
    left = [q for q in pids if alive(q)]
    print(f"  rank processes left {time.time() - t:.1f} s after mpiexec's exit: {left}")
    check(not left, f"no rank process left running ({left})")
    check_partial(out, ref, job, np_, T, "SIGKILL")
    # Open MPI's sharedfp/lockedfile leaves "<out>-<jobid>-<pid>.lock" (8 bytes) when an abort
    # skips MPI_File_close and the ranks span nodes (tests/multinode killhost); on one node it
    # picks sharedfp/sm, so plant one: the resumed job removes it, and nothing that looks alike
    stale, alike = f"{out}-1630863361-3550.lock", f"{out}-1630863361-3550.lock.keep"
    for q in (stale, alike):
        with open(q, "wb") as f:
            f.write(bytes(8))
    resume_and_compare(job, np_, out, ref, "SIGKILL")
    check(not os.path.exists(stale) and os.path.exists(alike),
          "--resume removes the aborted job's Open MPI lock file, keeps a look-alike")
    os.remove(alike)


# Stall watchdog: a stopped (SIGSTOP) rank neither dies nor answers, like a host whose link is
# down: without the watchdog the others wait in the next collective forever. Limit here:
# max(4 s, 3 x the slowest round), first round 20 s (room for a sanitizer build); with 2 s: MEASURED 5.8 s (limit 5 s) and 12 s (limit 10 s, round 0)
# from the stop to mpiexec's exit (3 ranks, rounds ~2-6 s on 2 cores). Bound 90 s: the limit
# + a loaded CI machine, not minutes.
STALL_EXIT_BOUND_S = 90


def stall_job(name, T, **runtime):
    job, out = interrupted_job(name, T)
    with open(job) as f:
        j = json.load(f)
    j["runtime"] = runtime
    with open(job, "w") as f:
        json.dump(j, f)
    return job, out


def case_stall():
    """SIGSTOP one of 3 ranks mid-run: the stall watchdog ends the job with exit status 4
    within the bound, naming the silent rank, its host and the last completed round; the file
    opens, done rows are exact, --resume completes it bit-identically."""
    T, np_ = 64, 3
    job, out = stall_job("stall", T, stall_timeout=4, stall_factor=3)
    ref = reference(job, np_, out)
    p = start(np_, job)
    line = wait_progress(p)
    check(line is not None, f"a progress line before the end: {line}")
    pids = rank_pids(p)
    check(len(pids) == np_, f"{np_} rank processes under mpiexec: {pids}")
    t = time.time()
    os.kill(pids[2], signal.SIGSTOP)
    try:
        rc = p.wait(timeout=STALL_EXIT_BOUND_S + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = 124
    dt = time.time() - t
    for q in pids:  # a stopped process may survive mpiexec: end it ourselves
        try:
            os.kill(q, signal.SIGKILL)
        except OSError:
            pass
    p.stdout.read()
    err = open(os.path.join(A.work, "stderr.txt")).read()
    msg = [x for x in err.splitlines() if "stall:" in x]
    print(f"  job ended {dt:.1f} s after SIGSTOP of rank 2, rc {rc}: {msg}")
    check(rc == 4 and dt <= STALL_EXIT_BOUND_S,
          f"exit status 4 within {STALL_EXIT_BOUND_S} s ({dt:.1f} s, rc {rc})")
    # Two documented outcomes, depending on where SIGSTOP catches rank 2 (a race this test does
    # not control): between rounds, the check-in names the silent rank, its host and the last
    # round; inside the collective phase (the write or the stop-flag exchange, which rank 0 is
    # already in when it prints its progress line), the phase thread ends the job and says so,
    # since nobody can tell which rank is missing inside MPI-IO (docs/operations.md).
    named = any("waiting for 1 rank(s): rank 2 (host " in x and "last completed round " in x
                for x in msg)
    in_write = any("has not completed" in x and "lost during the write" in x
                   and "last completed round " in x for x in msg)
    print(f"  outcome: {'rank 2 named at the check-in' if named else 'stall inside the collective phase' if in_write else 'neither'}")
    check(named or in_write, "the message names rank 2, its host and the last completed round "
          "(or, stopped inside the collective phase, says so with the last completed round)")
    check_partial(out, ref, job, np_, T, "SIGSTOP")
    resume_and_compare(job, np_, out, ref, "SIGSTOP")


def case_slow_rank():
    """A slow but alive rank (DM_TEST_SLOW_RANK=1:6 sleeps 6 s per round, ~5x the others)
    with a 4 s floor (first round 20 s): every later round takes ~7 s, over the floor, but the
    limit follows the slowest round (10 x), so the job completes and equals the run without
    the hook bit for bit."""
    T, np_ = 32, 2
    job, out = stall_job("slow", T, stall_timeout=4)
    ref = reference(job, np_, out)
    rc, _, err = run(np_, job, env_extra={"DM_TEST_SLOW_RANK": "1:6"})
    check(rc == 0, f"slow rank: exit 0, no stall ({err.strip()[-300:]})")
    with h5py.File(out) as f:
        g = f["videos/00000"]
        check(np.array_equal(g["alpha"][...], ref[0])
              and np.array_equal(g["foreground"][...], ref[1]),
              "slow rank: output bit-identical to the run without the hook")
        w = f["ranks/write_s"][...]
        print(f"  write_s per rank (incl. waiting for the slow rank): {w}")
        check(w[0] > 10, f"rank 0 waited for the slow rank (write_s {w[0]:.1f} s > 10 s)")


def read_safetensors(path):
    """name -> numpy array (F32 / U8 only), parsed by hand: 8-byte header length, JSON, data."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        dt = {"F32": np.float32, "U8": np.uint8}[v["dtype"]]
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"])
    return out


def case_vda():
    """Video Depth Anything through the pipeline vs the official infer_video_depth (golden
    vda_vits/video.safetensors: 54 frames of 80x45, input_size 42, recipe weights): the golden
    RGB frames go into an RGB-exact lossless clip (FFV1 bgr0); -np 1, 2, 3 (windows round-robin,
    the alignment state passed between ranks) and -np 2 with split_videos never (state kept on
    one rank) must give bitwise identical depth, and -np 1 must match the official depths within
    5e-4 * std (golden README section 5: fp32 video/stream depths, scale/shift fitting amplifies
    rounding). --resume of a file whose last window is missing recomputes the video and ends
    bit-identical. The metric model skips the alignment: window 0's rows equal the relative
    run's, later rows differ, attributes say metres. (Matting + VDA in one job: case stages.)"""
    golden = shared("golden/vda_vits/video.safetensors")
    need(golden)
    wts = recipe_weights("vda_vits")
    g = read_safetensors(golden)
    frames, want = g["frames_rgb_u8"], g["depths"]
    T, H, W, _ = frames.shape
    clip = os.path.join(A.work, "vda_golden_80x45.mkv")
    p = subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-s", f"{W}x{H}", "-r", "15", "-i", "-", "-c:v", "ffv1",
                        "-pix_fmt", "bgr0", clip], input=frames.tobytes(), capture_output=True)
    check(p.returncode == 0, f"ffmpeg wrote the lossless clip ({p.stderr.decode()[-200:]})")

    def job(name, np_, split="always", model="vda_vits", go=True, **extra):
        out = os.path.join(A.work, f"vda_{name}.h5")
        j = {"inputs": [clip], "output": {"path": out, "overwrite": True},
             "depth": {"model": model, "weights": wts, "input_size": 42, "dtype": "float32"},
             "plan": {"split_videos": split}}
        j.update(extra)
        path = os.path.join(A.work, f"vda_{name}.yaml")
        with open(path, "w") as f:
            json.dump(j, f)
        if go:
            rc, _, err = run(np_, path)
            check(rc == 0, f"vda {name}: exit 0 ({err.strip()[-300:]})")
        return path, out

    runs = {}
    for name, np_, split in (("np1", 1, "always"), ("np2", 2, "always"), ("np3", 3, "always"),
                             ("np2_never", 2, "never")):
        runs[name] = job(name, np_, split)
    with h5py.File(runs["np1"][1]) as f:
        d = f["videos/00000/depth"]
        check(d.shape == (T, H, W) and d.dtype == np.float32, f"depth {d.shape} {d.dtype}")
        check(s(d.attrs["model"]) == "video_depth_anything_small" and
              "relative" in s(d.attrs["kind"]), "relative VDA attributes")
        check(int(f.attrs["complete"]) == 1 and bool(np.all(f["videos/00000/done"][...] == 1)),
              "np 1 complete, every row done")
        ref = d[...]
    err = float(np.abs(ref - want).max())
    tol = 5e-4 * float(want.std())
    print(f"  np 1 vs official infer_video_depth: max abs {err:.3g} (bound {tol:.3g} = 5e-4*std)")
    check(err <= tol, "np 1 depth == official video depth within 5e-4*std")
    for name in ("np2", "np3", "np2_never"):
        with h5py.File(runs[name][1]) as f:
            check(np.array_equal(f["videos/00000/depth"][...], ref), f"{name}: bitwise == np 1")
            check(int(f.attrs["complete"]) == 1, f"{name}: complete")

    # --resume: drop the last window's rows (46..53) as a crash before its round would.
    path3, out3 = runs["np3"]
    with h5py.File(out3, "r+") as f:
        f["videos/00000/done"][46:] = 0
        f["videos/00000/depth"][46:] = 0
        f.attrs["complete"] = 0
    rc, _, err = run(3, path3, "--resume")
    check(rc == 0, f"vda --resume: exit 0 ({err.strip()[-300:]})")
    with h5py.File(out3) as f:
        check(np.array_equal(f["videos/00000/depth"][...], ref) and int(f.attrs["complete"]) == 1,
              "vda --resume on 3 ranks: complete and bitwise == uninterrupted run")

    _, outm = job("metric", 2, model="vda_vits_metric")
    with h5py.File(outm) as f:
        d = f["videos/00000/depth"]
        m = d[...]
        check("metric" in s(d.attrs["kind"]) and s(d.attrs["units"]) == "m" and
              s(d.attrs["model"]) == "video_depth_anything_small_metric" and
              s(d.attrs["mode"]) == "offline", "metric attributes")
    check(np.array_equal(m[:24], ref[:24]), "metric: window 0 rows equal the relative run's")
    check(not np.array_equal(m[24:], ref[24:]), "metric: later rows are not aligned (differ)")

    # A window that fails to decode on one rank (slice CRC error in frame 37 of 54, window 1 on
    # rank 1 of 3): the rank of window 2 gets a "failed" state message instead of waiting
    # forever; with --keep-going the other video completes and equals the clean run.
    crc = os.path.join(A.work, "vda_crc.mkv")
    p = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", clip, "-c:v", "ffv1", "-level", "3",
                        "-slicecrc", "1", "-pix_fmt", "bgr0", crc], capture_output=True)
    check(p.returncode == 0, "ffmpeg wrote the slice-CRC clip")
    data = bytearray(open(crc, "rb").read())
    for i in range(int(len(data) * 0.7), int(len(data) * 0.7) + 300):
        data[i] ^= 0x5A
    damaged = os.path.join(A.work, "vda_damaged.mkv")
    with open(damaged, "wb") as f:
        f.write(data)
    pathk, outk = job("keep_going", 3, go=False, inputs=[damaged, clip])
    rc, _, err = run(3, pathk, "--keep-going")
    check(rc == 2, f"vda --keep-going with a damaged video: exit 2 (got {rc})")
    with h5py.File(outk) as f:
        check(s(f["videos/00000"].attrs["status"]) == "failed" and
              "vda_damaged.mkv" in s(f["videos/00000"].attrs["error"]), "damaged video failed, named")
        check(s(f["videos/00001"].attrs["status"]) == "ok" and
              np.array_equal(f["videos/00001/depth"][...], ref), "other video ok and == np 1")
    rc, _, err = run(3, pathk)
    check(rc != 0 and "vda_damaged.mkv" in err, "without --keep-going: non-zero exit, no hang")



def case_stages():
    """Matting (RVM, real weights) + Video Depth Anything (recipe weights, input_size 42) in one
    job over one decode (src/pipeline/pl_stage.h) equals the two separate jobs (matting-only,
    VDA-only) bit for bit in every dataset row (alpha, foreground, depth, pts, time_s, done):
    on 1 rank (two videos of different sizes: a context change between units) and on 3 ranks
    (three 48-frame videos, one per rank; the last window's padding frame is replayed from the
    look-ahead, not decoded again). A single video on 3 ranks (VDA windows round-robin, the
    alignment state passed on): depth bitwise == the VDA-only job (1 rank), every window chunk after
    frame 0 warms RVM up with matting.warmup_frames context frames (plan), and the rows of the
    rank starting at frame 0 equal the sequential matting rows."""
    src = [shared("videos/lossless/juggle_256x144_ffv1.mkv"),
           shared("videos/lossless/dog_320x180_ffv1.mkv"), shared("videos/foreman_h264.mp4")]
    rvm = shared("models/rvm_mobilenetv3.safetensors")
    need(*src, rvm)
    wts = recipe_weights("vda_vits")
    T = 48  # windows 0, 1, 2 (rows 46, 47); window 2 pads with frame 47
    # Smaller copies of three real clips keep RVM's CPU time down (the sanitizer pass runs this
    # too): lossless, and H.264 with a keyframe every 12 frames (VDA's key frames 0 and 22k-10
    # are seeks).
    clips = [os.path.join(A.work, "juggle_160x90.mkv"), os.path.join(A.work, "dog_128x72.mkv"),
             os.path.join(A.work, "foreman_144x112.mp4")]
    ffv1 = ["-c:v", "ffv1", "-pix_fmt", "bgr0"]
    for i, o, enc in ((src[0], clips[0], ffv1), (src[1], clips[1], ffv1),
                      (src[2], clips[2], ["-c:v", "libx264", "-g", "12", "-bf", "2", "-crf", "20",
                                          "-pix_fmt", "yuv420p"])):
        w, h = os.path.basename(o).split("_")[1].split(".")[0].split("x")
        p = subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", i, "-frames:v", str(T + 4), "-an",
                            "-vf", f"scale={w}:{h}", *enc, o], capture_output=True, text=True)
        check(p.returncode == 0, f"ffmpeg wrote {os.path.basename(o)} ({p.stderr[-200:]})")

    def job(name, inputs, matting, vda, **plan):
        out = os.path.join(A.work, f"stages_{name}.h5")
        j = {"inputs": inputs, "max_frames": T, "output": {"path": out, "overwrite": True}}
        if matting:
            j["matting"] = {"weights": rvm, "outputs": ["alpha", "foreground"]}
        if vda:
            j["depth"] = {"model": "vda_vits", "weights": wts, "input_size": 42}
        if plan:
            j["plan"] = plan
        path = os.path.join(A.work, f"stages_{name}.yaml")
        with open(path, "w") as f:
            json.dump(j, f)
        return path, out

    def go(np_, path, what):
        rc, _, err = run(np_, path)
        check(rc == 0, f"{what}: exit 0 ({err.strip()[-300:]})")

    def same(a, b, keys, n, what):
        with h5py.File(a) as fa, h5py.File(b) as fb:
            check(int(fa.attrs["complete"]) == 1, f"{what}: complete")
            for v in range(n):
                for k in keys:
                    x, y = fa[f"videos/{v:05d}/{k}"], fb[f"videos/{v:05d}/{k}"]
                    check(x.shape == y.shape and x.dtype == y.dtype and
                          np.array_equal(x[...], y[...]), f"{what}: video {v} {k} {x.shape} bitwise")
                check(bool(np.all(fa[f"videos/{v:05d}/done"][...] == 1)), f"{what}: video {v} all done")

    mkeys = ("alpha", "foreground", "pts", "time_s", "done")
    dkeys = ("depth", "pts", "time_s", "done")
    for np_, inputs in ((1, clips[:2]), (3, clips)):
        both, bout = job(f"both_np{np_}", inputs, True, True)
        mat, mout = job(f"matting_np{np_}", inputs, True, False)
        vda, vout = job(f"vda_np{np_}", inputs, False, True)
        for path, what in ((both, "matting + VDA"), (mat, "matting only"), (vda, "VDA only")):
            go(np_, path, f"{what}, {np_} rank(s)")
        same(bout, mout, mkeys, len(inputs), f"np {np_}: matting + VDA == matting only")
        same(bout, vout, dkeys, len(inputs), f"np {np_}: matting + VDA == VDA only")
        with h5py.File(bout) as f:
            check(s(f["videos/00000/depth"].attrs["model"]) == "video_depth_anything_small" and
                  f["videos/00000/alpha"].shape == (T, 90, 160), "both datasets with attributes")

    # One video on 3 ranks: windows round-robin, RVM warm-up per window chunk.
    both, bout = job("split_both", clips[:1], True, True)
    # clips[0] sequential, from above (VDA depth is rank-invariant bitwise: e2e_vda)
    seq, vout = (os.path.join(A.work, f"stages_{k}_np1.h5") for k in ("matting", "vda"))
    starts = chunk_starts(both, 3)
    check(len(starts) == 2 and all(cb == max(0, b - 32) for b, cb in starts),
          f"plan: window chunks warm RVM up 32 frames ({starts})")
    go(3, both, "split matting + VDA, 3 ranks")
    same(bout, vout, dkeys, 1, "split np 3: matting + VDA == VDA only (1 rank)")
    with h5py.File(bout) as f, h5py.File(seq) as g:
        a, r = f["videos/00000/alpha"][...], g["videos/00000/alpha"][...]
        # chunks warmed up from frame 0 (windows 0 and 1) saw the same frames as sequential RVM
        cold = min([b for b, cb in starts if cb > 0] + [T])
        check(cold == 46 and np.array_equal(a[:cold], r[:cold]),
              f"split: rows 0..{cold - 1} (RVM context from frame 0) == sequential")
        d = np.abs(a[cold:].astype(int) - r[cold:].astype(int))
        print(f"  split: rows {cold}..{T - 1} (RVM warmed up 32 frames) vs sequential alpha: "
              f"max {d.max()} levels, mean {d.mean():.3f} (DESIGN.md \"Context frames\")")


# e2e_device's VDA stream float16 + NaN rows vs the CPU run (x std of the CPU rows): the
# pipeline check's depth bounds (tests/gpu/compare_h5.py, docs/gpu.md): max 1e-2, mean 1e-3.
# Measured (14 frames, 256x144, input_size 28): max 7.2e-4 std, mean 1.1e-4 std; the only
# difference is the float16 storage of the cached states between frames (2^-11 relative).
STREAM_F16_TOL = (1e-2, 1e-3)


def device_vda_stream(clip, vda_w, rows, ranks, video_attr):
    """case_device's VDA stream part (the non-finite guard of pl_stage_vda_stream.c)."""
    # The VDA stream (depth.mode stream) is recurrent like RVM: a float16 frame with NaNs is
    # redone on the CPU reference from the state it started from (vda_stream_checkpoint of the
    # cache bookkeeping, the restored cache downloaded into the reference), and the device
    # continues from the reference's new state (its new cache slot uploaded). NaN in every
    # frame's resized depth: every frame is the CPU's computation, frame 0 (empty cache) bitwise;
    # later frames attend over cached states that were stored in float16 on the device between
    # frames, so they may differ from the CPU run by that rounding (bound below, measured).
    def stream_job(name, backend, precision="float32"):
        out = os.path.join(A.work, name + ".h5")
        j = {"inputs": [clip], "max_frames": STREAM_T, "output": {"path": out, "chunk_frames": 4},
             "runtime": {"backend": backend, "precision": precision, "verify": "off"},
             "depth": {"model": "vda_vits", "weights": vda_w, "input_size": 28,
                       "dtype": "float32", "mode": "stream"}}
        path = os.path.join(A.work, name + ".yaml")
        with open(path, "w") as f:
            json.dump(j, f)
        return path, out

    STREAM_T = 14  # past frame 11, where the cache list starts sliding
    sj, sout = stream_job("vdas_cpu", "cpu")
    rc, _, err = run(2, sj)
    check(rc == 0, f"vda stream cpu: exit 0 ({err.strip()[-300:]})")
    hj, hout = stream_job("vdas_f16_nan", "emulated", precision="float16")
    rc, _, err = run(2, hj, env_extra={"DM_TEST_EMU_FAULT": "resize:nan"})
    check(rc == 0 and "recomputed in float32" in err and "VDA stream" in err,
          f"vda stream f16 + NaN: exit 0, reported ({err.strip()[-300:]})")
    a, _ = rows(sout, "depth")
    b, done = rows(hout, "depth")
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))[1:]
    sd = float(a.std())
    check(bool(np.all(done == 1)) and bool(np.all(np.isfinite(b))) and np.array_equal(a[0], b[0])
          and float(d.max()) <= STREAM_F16_TOL[0] * sd and float(d.mean()) <= STREAM_F16_TOL[1] * sd,
          f"vda stream f16 + NaN: rows = the CPU float32 run (frame 0 bitwise; frames 1..: max "
          f"{d.max():.3g} = {d.max() / sd:.2e} std, mean {d.mean() / sd:.2e} std; bounds "
          f"{STREAM_F16_TOL} std)")
    # and not bitwise: the reference started each frame from the device's (float16-stored)
    # cache, not from a float32 cache of its own
    check(float(d.max()) > 0, "vda stream f16 + NaN: frames 1.. from the device's float16 cache")
    rec = ranks(hout, "recomputed_frames")
    check(int(rec.sum()) == STREAM_T and video_attr(hout, "recomputed_frames") == STREAM_T,
          f"vda stream f16 + NaN: every frame counted (/ranks {rec}, video attribute)")
    # --resume of the last rows replays the stream from frame 0: the replayed frames are
    # recomputed (their states feed the rows) and counted too; the attribute sums the runs
    with h5py.File(hout, "r+") as f:
        f["videos/00000/done"][10:] = 0
        f["videos/00000/depth"][10:] = 0
        f.attrs["complete"] = 0
    rc, _, err = run(2, hj, "--resume", env_extra={"DM_TEST_EMU_FAULT": "resize:nan"})
    b2, done = rows(hout, "depth")
    rec = ranks(hout, "recomputed_frames")
    check(rc == 0 and bool(np.all(done == 1)) and np.array_equal(b, b2)
          and int(rec.sum()) == STREAM_T and video_attr(hout, "recomputed_frames") == 2 * STREAM_T,
          f"vda stream f16 + NaN --resume: replayed frames 0..9 recomputed and counted (/ranks "
          f"{rec}, video attribute {video_attr(hout, 'recomputed_frames')}), rows bitwise equal "
          f"({err.strip()[-200:]})")
    fj, fout = stream_job("vdas_f32_nan", "emulated")
    t = time.time()
    rc, _, err = run(2, fj, env_extra={"DM_TEST_EMU_FAULT": "resize:nan-always"}, timeout=200)
    check(rc != 0 and "VDA stream depth has" in err and "frame 0" in err and clip in err
          and time.time() - t < 120,
          f"vda stream f32 + NaN: error names video, frame, stage ({err.strip()[-300:]})")
    if os.path.exists(fout):
        _, done = rows(fout, "depth")
        check(int(done.sum()) == 0, f"vda stream f32 + NaN: no row written ({done})")


def case_device():
    """The GPU code paths of the pipeline without a GPU: runtime.backend emulated (CPU ops
    behind the device rules, backend_emu.h) with its fault hook DM_TEST_EMU_FAULT.
    - DA-V2, RVM and VDA on 2 ranks: rows bitwise equal to the CPU run; every rank verified
      its first frame (VDA: window) against the CPU reference (runtime.verify, /ranks);
    - one op perturbed: the job stops (also with --keep-going), the message names the check,
      the backend and the tolerance, and no row is written;
    - float16 with NaNs injected into the reduced-precision resizes (the last op of DA-V2; a NaN
      inside the ViT can be swallowed by a later ReLU): every frame recomputed in
      float32 (counted in /ranks), rows bitwise equal to the CPU run, all finite;
    - RVM float16 with a NaN in every frame's alpha: each frame (warm-up included) recomputed
      in float32 from its starting state (checkpoint), rows equal to the CPU run up to the
      float16 storage of the state between frames;
    - VDA stream (recurrent cache) float16 with a NaN in every frame: each frame recomputed on
      the CPU from the cache it started from (replayed frames of a --resume included), rows
      equal to the CPU run up to the float16 storage of the cache between frames;
    - NaNs also in float32 (DA-V2, RVM, VDA stream): an error naming video, frame and stage;
      no row written;
    - runtime.verify all: every frame (RVM: warm-up frames too) verified, rows unchanged;
    - runtime.backend cuda without a GPU: one clear line, non-zero exit, no hang;
    - a GPU the build has no code for (DM_TEST_CUDA_CC=8.0, simulated): auto runs every rank on
      the CPU (one line each, the CPU's rows), cuda is the job's error naming the compute
      capability and how to rebuild."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    rvm_w = shared("models/rvm_mobilenetv3.safetensors")
    need(clip, rvm_w)
    wts = recipe_weights("da2_vits")

    vda_w = recipe_weights("vda_vits")

    def job(name, backend, precision="float32", matting=False, verify="first_frame", vda=False):
        out = os.path.join(A.work, name + ".h5")
        j = {"inputs": [clip], "max_frames": 30 if vda else 8,
             "output": {"path": out, "chunk_frames": 4},
             "runtime": {"backend": backend, "precision": precision, "verify": verify},
             "plan": {"split_videos": "always", "min_chunk_frames": 4}}
        if matting:
            j["matting"] = {"weights": rvm_w, "warmup_frames": 2}
        elif vda:
            j["depth"] = {"model": "vda_vits", "weights": vda_w, "input_size": 28,
                          "dtype": "float32"}
        else:
            j["depth"] = {"weights": wts, "input_size": 42, "dtype": "float32"}
        path = os.path.join(A.work, name + ".yaml")
        with open(path, "w") as f:
            json.dump(j, f)
        return path, out

    def rows(out, key):
        with h5py.File(out) as f:
            return f["videos/00000/" + key][...], f["videos/00000/done"][...]

    def ranks(out, col):
        with h5py.File(out) as f:
            return f["ranks/" + col][...]

    def video_attr(out, name):
        with h5py.File(out) as f:
            return int(f["videos/00000"].attrs[name])

    for tag, key in (("da2", "depth"), ("rvm", "alpha"), ("vda", "depth")):
        matting, vda = tag == "rvm", tag == "vda"
        cj, cout = job(f"{tag}_cpu", "cpu", matting=matting, vda=vda)
        rc, _, err = run(2, cj)
        check(rc == 0, f"{tag} cpu: exit 0 ({err.strip()[-300:]})")
        ej, eout = job(f"{tag}_emu", "emulated", matting=matting, vda=vda)
        rc, out, err = run(2, ej)
        check(rc == 0, f"{tag} emulated: exit 0 ({err.strip()[-300:]})")
        a, _ = rows(cout, key)
        b, done = rows(eout, key)
        check(np.array_equal(a, b), f"{tag}: emulated rows bitwise equal to the CPU run")
        check(bool(np.all(done == 1)), f"{tag}: every row done")
        vf = ranks(eout, "verified_frames")
        check(vf.shape == (2,) and bool(np.all(vf >= 1)), f"{tag}: each rank verified (/ranks {vf})")
        dev = [s(x) for x in ranks(eout, "device")]
        check(dev == ["emulated", "emulated"], f"{tag}: /ranks device {dev}")
        check(bool(np.all(ranks(cout, "verified_frames") == 0)), f"{tag}: no verification on the CPU")
        # a wrong op is caught before anything is written, --keep-going or not
        fault = {"rvm": "conv2d", "da2": "linear", "vda": "attention"}[tag]
        pj, pout = job(f"{tag}_perturbed", "emulated", matting=matting, vda=vda)
        rc, _, err = run(2, pj, "--keep-going", env_extra={"DM_TEST_EMU_FAULT": fault}, timeout=200)
        check(rc != 0 and "runtime.verify" in err and "differs from the CPU reference" in err
              and "tolerance" in err and "emulated backend" in err,
              f"{tag}: perturbed {fault} caught ({err.strip()[-400:]})")
        if os.path.exists(pout):
            _, done = rows(pout, key)
            check(int(done.sum()) == 0, f"{tag}: no row written after a failed verification ({done})")

    # runtime.verify all (debugging): every frame recomputed on the CPU and compared, for the
    # frame-synchronous models (RVM: warm-up frames too) — counted per frame; rows unchanged
    for tag, key in (("da2", "depth"), ("rvm", "alpha")):
        cout = os.path.join(A.work, f"{tag}_cpu.h5")
        vj, vout = job(f"{tag}_verify_all", "emulated", matting=tag == "rvm", verify="all")
        if tag == "rvm":  # the foreground too: two comparisons, one frame counted
            with open(vj) as f:
                jj = json.load(f)
            jj["matting"]["outputs"] = ["alpha", "foreground"]
            with open(vj, "w") as f:
                json.dump(jj, f)
        rc, _, err = run(2, vj)
        check(rc == 0, f"{tag} verify all: exit 0 ({err.strip()[-300:]})")
        a, _ = rows(cout, key)
        b, done = rows(vout, key)
        check(np.array_equal(a, b) and bool(np.all(done == 1)),
              f"{tag} verify all: rows bitwise equal to the CPU run")
        vf = int(ranks(vout, "verified_frames").sum())
        # 8 rows over 2 chunks; RVM's second chunk warms up on 2 more frames
        want = 8 if tag == "da2" else 10
        check(vf == want, f"{tag} verify all: {vf} frames verified (want {want}: every frame)")

    # float16 + NaN overflow injected into the reduced-precision pass: float32 recompute
    cj, cout = os.path.join(A.work, "da2_cpu.yaml"), os.path.join(A.work, "da2_cpu.h5")
    hj, hout = job("da2_f16_nan", "emulated", precision="float16", verify="off")
    rc, _, err = run(2, hj, env_extra={"DM_TEST_EMU_FAULT": "resize:nan"})
    check(rc == 0, f"f16 + NaN: exit 0 ({err.strip()[-300:]})")
    check("recomputed in float32" in err, "f16 + NaN: the recompute is reported")
    a, _ = rows(cout, "depth")
    b, done = rows(hout, "depth")
    rec = ranks(hout, "recomputed_frames")
    check(int(rec.sum()) == 8, f"f16 + NaN: 8 frames recomputed (/ranks {rec})")
    check(video_attr(hout, "recomputed_frames") == 8 and video_attr(cout, "recomputed_frames") == 0,
          "f16 + NaN: per-video attribute recomputed_frames 8 (CPU run: 0)")
    check(bool(np.all(np.isfinite(b))) and np.array_equal(a, b),
          "f16 + NaN: recomputed rows finite and equal to the CPU float32 run")
    # VDA: a float16 window with NaNs is recomputed in float32 from the same input
    vj, vout = job("vda_f16_nan", "emulated", precision="float16", verify="off", vda=True)
    rc, _, err = run(2, vj, env_extra={"DM_TEST_EMU_FAULT": "resize:nan"})
    check(rc == 0 and "recomputed in float32" in err, f"vda f16 + NaN: exit 0, reported ({err.strip()[-300:]})")
    a, _ = rows(os.path.join(A.work, "vda_cpu.h5"), "depth")
    b, _ = rows(vout, "depth")
    check(bool(np.all(np.isfinite(b))) and np.array_equal(a, b),
          "vda f16 + NaN: recomputed windows equal to the CPU float32 run")
    vrec = int(ranks(vout, "recomputed_frames").sum())
    check(vrec >= 32 and video_attr(vout, "recomputed_frames") == vrec,
          f"vda f16 + NaN: windows counted ({vrec}, = the video attribute)")
    # RVM is recurrent: a float16 frame with NaNs is recomputed in float32 from the state it
    # started from (a checkpoint taken before each frame) and the device continues from the
    # reference's new state. With a NaN in every frame's alpha, every frame is the CPU's
    # computation; the state between frames is stored in float16 on the device (as on a GPU),
    # so rows after a chunk's first frame may differ from the CPU run by that rounding: the
    # bound is the pipeline check's (tests/gpu/compare_h5.py: alpha <= 2 levels max, 0.05
    # mean); the first frame of each chunk (cold state) must be bitwise equal.
    mj, mout = job("rvm_f16_nan", "emulated", precision="float16", matting=True, verify="off")
    rc, _, err = run(2, mj, env_extra={"DM_TEST_EMU_FAULT": "matting_compose:nan"})
    check(rc == 0 and "recomputed in float32" in err and "RVM" in err,
          f"rvm f16 + NaN: exit 0, reported ({err.strip()[-300:]})")
    a, _ = rows(os.path.join(A.work, "rvm_cpu.h5"), "alpha")
    b, done = rows(mout, "alpha")
    d = np.abs(a.astype(np.int32) - b.astype(np.int32))
    check(bool(np.all(done == 1)) and np.array_equal(a[0], b[0]) and int(d.max()) <= 2
          and float(d.mean()) <= 0.05,
          f"rvm f16 + NaN: alpha rows = the CPU float32 run (frame 0 bitwise, max {d.max()}, "
          f"mean {d.mean():.4f} levels)")
    rec = ranks(mout, "recomputed_frames")
    # 8 rows + the 2 warm-up frames of the second chunk (its state feeds its rows)
    check(int(rec.sum()) == 10 and video_attr(mout, "recomputed_frames") == 10,
          f"rvm f16 + NaN: rows and warm-up frames counted (/ranks {rec}, video attribute)")
    mj, mout = job("rvm_f32_nan", "emulated", matting=True, verify="off")
    rc, _, err = run(2, mj, env_extra={"DM_TEST_EMU_FAULT": "matting_compose:nan-always"})
    check(rc != 0 and "RVM output has" in err and "frame 0" in err and clip in err,
          f"rvm f32 + NaN: error names video, frame, stage ({err.strip()[-300:]})")
    device_vda_stream(clip, vda_w, rows, ranks, video_attr)
    # NaN in float32: an error naming video, frame and stage
    fj, fout = job("da2_f32_nan", "emulated", verify="off")
    rc, _, err = run(2, fj, env_extra={"DM_TEST_EMU_FAULT": "resize:nan-always"})
    check(rc != 0 and "frame 0" in err and "DA-V2 depth has" in err and "NaN/Inf" in err
          and clip in err, f"f32 + NaN: error names video, frame, stage ({err.strip()[-300:]})")
    # cuda without a GPU (this machine): one line, non-zero, no hang
    gj, _ = job("da2_cuda", "cuda")
    t = time.time()
    rc, _, err = run(2, gj, timeout=120)
    check(rc != 0 and "runtime.backend cuda" in err and time.time() - t < 60
          and ("no visible GPU" in err or "no CUDA backend" in err)
          and "cuda: runtime.backend" not in err,
          f"cuda without a GPU: clear error ({err.strip()[-300:]})")
    # ranks of one node that disagree on their devices (auto; DM_TEST_CUDA_DEVICE_COUNT=1 on
    # rank 0 only, an MPMD launch): every rank takes part in the node's binding collective, so
    # the job ends with rank 0's binding error (1 device, 2 ranks) instead of a hang
    aj, _ = job("da2_auto_mixed", "auto")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    cmd = [A.mpiexec, "--oversubscribe", "-np", "1", "-x", "DM_TEST_CUDA_DEVICE_COUNT=1",
           A.exe, "run", aj, "--quiet", ":", "-np", "1", A.exe, "run", aj, "--quiet"]
    t = time.time()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        rc, err = 124, "(timeout: hang)"
    check(rc != 0 and time.time() - t < 60 and "runtime.backend auto" in err
          and "2 ranks on this node" in err,
          f"auto, ranks disagreeing on devices: one error, no hang (rc {rc}, "
          f"{time.time() - t:.1f} s, {err.strip()[-300:]})")
    # a GPU the build has no code for (test hook DM_TEST_CUDA_CC=8.0: dm_backend_cuda_create's
    # architecture check for an A100 against this build's CMAKE_CUDA_ARCHITECTURES, default
    # 90-real;90-virtual; 2 simulated devices, so both ranks bind one and refuse it after the
    # binding collective): auto runs both ranks on the CPU with one line each and writes the
    # CPU's rows; cuda is the job's error naming the compute capability and the rebuild. A
    # build without CUDA refuses the same way with "no CUDA backend".
    sim = {"DM_TEST_CUDA_DEVICE_COUNT": "2", "DM_TEST_CUDA_CC": "8.0"}

    def arch_refusal(err):
        return ("compute capability 8.0" in err and "CMAKE_CUDA_ARCHITECTURES" in err
                and "-DCMAKE_CUDA_ARCHITECTURES=" in err) or "no CUDA backend" in err

    fj, fout = job("da2_auto_sm80", "auto")
    t = time.time()
    rc, _, err = run(2, fj, env_extra=sim, timeout=200)
    check(rc == 0 and err.count("depthmatte: runtime.backend auto: running on the CPU: ") == 2
          and arch_refusal(err) and time.time() - t < 150,
          f"auto on a GPU without code in this build: CPU on both ranks, one line each (rc {rc}, "
          f"{err.strip()[-400:]})")
    if rc == 0:
        a, _ = rows(os.path.join(A.work, "da2_cpu.h5"), "depth")
        b, done = rows(fout, "depth")
        dev = [s(x) for x in ranks(fout, "device")]
        check(dev == ["cpu", "cpu"] and bool(np.all(done == 1)) and np.array_equal(a, b),
              f"auto fallback: /ranks device {dev}, rows equal to the CPU run")
    cj, _ = job("da2_cuda_sm80", "cuda")
    t = time.time()
    rc, _, err = run(2, cj, env_extra=sim, timeout=120)
    check(rc != 0 and "runtime.backend cuda" in err and arch_refusal(err)
          and "running on the CPU" not in err and time.time() - t < 60,
          f"cuda on a GPU without code in this build: the job's error (rc {rc}, "
          f"{err.strip()[-400:]})")

def case_vda_stream():
    """depth.mode stream (the official infer_video_depth_one, pl_stage_vda_stream.c) through the
    pipeline. The golden frames of vda_vits/stream.safetensors (40 frames of 80x45, input_size
    42, recipe weights) go into an RGB-exact FFV1 clip: -np 1 rows must match the official
    streaming depths within 5e-4 * std (golden README section 5; tests/vda/test_vda_stream.c
    runs the same frames through the model API and observes 8.2e-6 std). With a real clip
    (foreman, first 24 frames) as a second video, -np 1 and -np 2 (each rank streams one whole
    video) give bitwise identical, finite rows; --resume of a file whose last rows are missing
    replays the stream from frame 0 and ends bitwise equal; matting + stream in one job gives
    the same depth rows; the metric model writes metres;
    plan.split_videos always and da2_vits + stream are refused with one line naming the key."""
    golden = shared("golden/vda_vits/stream.safetensors")
    video = shared("golden/vda_vits/video.safetensors")
    real = shared("videos/foreman_h264.mp4")
    need(golden, video, real)
    wts = recipe_weights("vda_vits")
    frames = read_safetensors(video)["frames_rgb_u8"][:40]
    want = read_safetensors(golden)["depths"]
    T, H, W, _ = frames.shape
    clip = os.path.join(A.work, "stream_golden_80x45.mkv")
    p = subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-s", f"{W}x{H}", "-r", "15", "-i", "-", "-c:v", "ffv1",
                        "-pix_fmt", "bgr0", clip], input=frames.tobytes(), capture_output=True)
    check(p.returncode == 0, f"ffmpeg wrote the lossless clip ({p.stderr.decode()[-200:]})")

    def job(name, inputs, model="vda_vits", go=True, np_=1, max_frames=None, **plan):
        out = os.path.join(A.work, f"stream_{name}.h5")
        j = {"inputs": inputs, "output": {"path": out, "overwrite": True, "chunk_frames": 8},
             "depth": {"model": model, "weights": wts, "input_size": 42, "dtype": "float32",
                       "mode": "stream"}}
        if max_frames:
            j["max_frames"] = max_frames
        if plan:
            j["plan"] = plan
        path = os.path.join(A.work, f"stream_{name}.yaml")
        with open(path, "w") as f:
            json.dump(j, f)
        if go:
            rc, _, err = run(np_, path)
            check(rc == 0, f"stream {name}: exit 0 ({err.strip()[-300:]})")
        return path, out

    _, out1 = job("golden", [clip])
    with h5py.File(out1) as f:
        d = f["videos/00000/depth"]
        check(d.shape == (T, H, W) and d.dtype == np.float32, f"depth {d.shape} {d.dtype}")
        check(s(d.attrs["model"]) == "video_depth_anything_small" and
              s(d.attrs["mode"]) == "stream", "VDA model and mode attributes")
        got = d[...]
    err = float(np.abs(got - want).max())
    tol = 5e-4 * float(want.std())
    print(f"  np 1 vs official infer_video_depth_one: max abs {err:.3g} (bound {tol:.3g})")
    check(bool(np.isfinite(got).all()) and err <= tol,
          "np 1 rows == official streaming depths within 5e-4*std")

    two = [clip, real]
    path1, o1 = job("two_np1", two, max_frames=24)
    _, o2 = job("two_np2", two, max_frames=24, np_=2)
    with h5py.File(o1) as f1, h5py.File(o2) as f2:
        for v in ("00000", "00001"):
            a, b = f1[f"videos/{v}/depth"][...], f2[f"videos/{v}/depth"][...]
            check(a.shape[0] == 24 and bool(np.isfinite(a).all()), f"video {v}: 24 finite rows")
            check(np.array_equal(a, b), f"video {v}: -np 2 rows bitwise == -np 1")
        check(np.array_equal(f1["videos/00000/depth"][...], got[:24]),
              "24-frame run == first 24 rows of the 40-frame run (causal)")

    # --resume: drop the last rows of the real clip, as a crash before their round would.
    with h5py.File(o1, "r+") as f:
        ref = f["videos/00001/depth"][...]
        f["videos/00001/done"][17:] = 0
        f["videos/00001/depth"][17:] = 0
        f.attrs["complete"] = 0
    rc, _, err = run(1, path1, "--resume")
    check(rc == 0, f"stream --resume: exit 0 ({err.strip()[-300:]})")
    with h5py.File(o1) as f:
        check(np.array_equal(f["videos/00001/depth"][...], ref) and
              int(f.attrs["complete"]) == 1, "stream --resume: replayed, bitwise == full run")

    # matting + stream in one job over one decode: the depth rows equal the stream-only run's
    pm, outmat = job("matting", [clip], go=False, max_frames=10)
    with open(pm) as f:
        j = json.load(f)
    j["matting"] = {"weights": shared("models/rvm_mobilenetv3.safetensors"), "outputs": ["alpha"]}
    with open(pm, "w") as f:
        json.dump(j, f)
    rc, _, err = run(2, pm)
    check(rc == 0, f"stream + matting: exit 0 ({err.strip()[-300:]})")
    with h5py.File(outmat) as f:
        check(np.array_equal(f["videos/00000/depth"][...], got[:10]) and
              f["videos/00000/alpha"].shape[0] == 10,
              "matting + stream in one job: depth rows bitwise == the stream-only run")

    _, om = job("metric", [clip], model="vda_vits_metric", max_frames=6)
    with h5py.File(om) as f:
        d = f["videos/00000/depth"]
        check(s(d.attrs["units"]) == "m" and "metric" in s(d.attrs["kind"]) and
              bool(np.isfinite(d[...]).all()), "metric stream: metres, finite rows")

    path, _ = job("split", [clip], go=False, split_videos="always")
    rc, _, err = run(1, path)
    ok, lines = one_error_line(err, "stream_split.yaml")
    check(rc != 0 and ok and "plan.split_videos" in lines[0] and "stream" in lines[0],
          f"split_videos always refused with one line naming file and key: {lines}")
    path, _ = job("da2", [clip], model="da2_vits", go=False)
    rc, _, err = run(1, path)
    ok, lines = one_error_line(err, "stream_da2.yaml")
    check(rc != 0 and ok and "depth.mode" in lines[0],
          f"da2_vits + stream refused with one line: {lines}")


# --------------------------------------------------------------------------------------------
# Write/compute overlap (pl_overlap.c): the HDF5 write of round r runs beside the compute of
# round r + 1 on a thread of its own; DM_OVERLAP=0 runs everything on the main thread.
def h5_rows(path):
    """Every video's datasets (rows, pts, time_s, done) and status, for bitwise comparison."""
    out = {}
    with h5py.File(path) as f:
        for vid in f["videos"]:
            g = f["videos/" + vid]
            out[vid + "/status"] = s(g.attrs["status"])
            for k in ("alpha", "foreground", "depth", "pts", "time_s", "done"):
                if k in g:
                    out[vid + "/" + k] = g[k][...]
        hidden = f["ranks/write_hidden_s"][...]
        write = f["ranks/write_s"][...]
    return out, hidden, write


def same_rows(a, b):
    diff = [k for k in sorted(set(a) | set(b))
            if k not in a or k not in b or not np.array_equal(a[k], b[k])]
    return not diff, diff


def case_overlap():
    """Overlap on (default) == DM_OVERLAP=0 bit for bit: matting on 1 and 3 ranks, matting +
    DA-V2 (batch 2, 2 threads per rank: the compute thread takes the backend's OpenMP team),
    VDA with the alignment state handed rank to rank, a damaged video with --keep-going (units
    started early for a video that failed on another rank are dropped); the stats say how much
    of the write the overlap hid (0 when off). A write failure while the next unit computes:
    the job ends promptly with one line naming the file, the done rows are exact, --resume
    completes the file bit-identically."""
    clip = shared("videos/lossless/juggle_256x144_ffv1.mkv")
    need(clip, shared("models/rvm_mobilenetv3.safetensors"))
    da2 = recipe_weights("da2_vits")
    vda = recipe_weights("vda_vits")
    # The damaged clip of case_vda (slice CRC error in frame 37 of 54, 80x45) + a clean copy on
    # 3 ranks: rank 1 (rows 36..53, context from 32) fails the damaged video in round 0 while
    # rank 0 (rows 0..35) has already started its round-1 unit of it on the compute thread;
    # that unit must be dropped, not written (measured: 4 rows done, as with DM_OVERLAP=0).
    golden = shared("golden/vda_vits/video.safetensors")
    need(golden)
    frames = read_safetensors(golden)["frames_rgb_u8"]
    T0, H0, W0, _ = frames.shape
    small = os.path.join(A.work, "ov_80x45.mkv")
    p = subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-s", f"{W0}x{H0}", "-r", "15", "-i", "-", "-c:v", "ffv1", "-level", "3",
                        "-slicecrc", "1", "-pix_fmt", "bgr0", small], input=frames.tobytes(),
                       capture_output=True)
    check(p.returncode == 0, "ffmpeg wrote the slice-CRC clip")
    data = bytearray(open(small, "rb").read())
    for i in range(int(len(data) * 0.7), int(len(data) * 0.7) + 300):
        data[i] ^= 0x5A
    damaged = os.path.join(A.work, "ov_damaged.mkv")
    with open(damaged, "wb") as f:
        f.write(data)
    split = {"split_videos": "always", "min_chunk_frames": 4}
    cases = [  # name, ranks, extra CLI args, expected exit status, job sections
        ("rvm_np1", 1, (), 0, dict(max_frames=24, output={"chunk_frames": 4},
                                    matting={"warmup_frames": 4}, plan=split)),
        ("rvm_np3", 3, (), 0, dict(max_frames=36, output={"chunk_frames": 4},
                                    matting={"warmup_frames": 4}, plan=split)),
        ("rvm_da2_np2", 2, (), 0, dict(
            max_frames=16, output={"chunk_frames": 4}, matting={"warmup_frames": 4}, plan=split,
            depth={"weights": da2, "input_size": 70, "dtype": "float32"},
            runtime={"batch_size": 2, "threads": 2})),
        ("vda_np2", 2, (), 0, dict(
            max_frames=54, matting={"enabled": False},
            depth={"model": "vda_vits", "weights": vda, "input_size": 42, "dtype": "float32"},
            plan={"split_videos": "always"})),
        ("keep_going_np3", 3, ("--keep-going",), 2, dict(
            inputs=[damaged, small], max_frames=54, output={"chunk_frames": 4},
            matting={"warmup_frames": 4}, plan=split)),
    ]
    hid_any = False
    for name, np_, extra, want_rc, sec in cases:
        res = {}
        for mode, env in (("on", None), ("off", {"DM_OVERLAP": "0"})):
            out = os.path.join(A.work, f"ov_{name}_{mode}.h5")
            sec2 = dict(sec)
            inputs = sec2.pop("inputs", [clip])
            mf = sec2.pop("max_frames")
            job = write_job(f"ov_{name}_{mode}", inputs, out, **sec2)
            with open(job) as f:
                j = json.load(f)
            j["max_frames"] = mf
            if j["matting"].get("enabled") is False:
                del j["matting"]
            with open(job, "w") as f:
                json.dump(j, f)
            rc, _, err = run(np_, job, *extra, env_extra=env, timeout=300)
            check(rc == want_rc, f"{name} overlap {mode}: exit {want_rc} (got {rc}; "
                  f"{err.strip()[-300:]})")
            res[mode] = h5_rows(out)
        ok, diff = same_rows(res["on"][0], res["off"][0])
        check(ok, f"{name}: overlap on == off bit for bit in every dataset ({diff or 'all equal'})")
        h_on, w_on = res["on"][1], res["on"][2]
        print(f"  {name}: write_s on {np.round(w_on, 2).tolist()}, hidden "
              f"{np.round(h_on, 2).tolist()}; off {np.round(res['off'][2], 2).tolist()}")
        check(bool(np.all(res["off"][1] == 0)), f"{name}: DM_OVERLAP=0 hides nothing (/ranks)")
        check(bool(np.all(h_on <= w_on + 1e-9)), f"{name}: hidden <= write_s on every rank")
        hid_any = hid_any or bool(np.any(h_on > 0))
    check(hid_any, "the overlap hid part of some write (/ranks write_hidden_s > 0)")
    r, _, _ = h5_rows(os.path.join(A.work, "ov_keep_going_np3_on.h5"))
    check(r["00000/status"] == "failed" and r["00001/status"] == "ok"
          and bool(np.all(r["00001/done"] == 1)),
          "keep_going: damaged video failed, the other complete")
    check(0 < int(r["00000/done"].sum()) < T0, "keep_going: part of the damaged video done "
          f"({int(r['00000/done'].sum())} rows)")

    # A write error on rank 1 in round 3 while its round-4 unit computes (the test hook stands
    # for a full disk): as any fatal write error, the rank reports it and aborts the job.
    T, np_ = 64, 2
    job, out = interrupted_job("ov_wfail", T)
    ref = reference(job, np_, out)
    t = time.time()
    rc, _, err = run(np_, job, env_extra={"DM_TEST_WRITE_FAIL": "1:3"}, timeout=120)
    dt = time.time() - t
    lines = [l for l in err.splitlines() if l.startswith("depthmatte:")]
    check(rc != 0 and dt <= CRASH_EXIT_BOUND_S, f"write failure: non-zero exit within "
          f"{CRASH_EXIT_BOUND_S} s (rc {rc}, {dt:.1f} s)")
    check(len(lines) == 1 and "ov_wfail.h5" in lines[0] and "round 3" in lines[0],
          f"write failure: one line naming the file and the round: {lines}")
    done = check_partial(out, ref, job, np_, T, "write failure")
    check(done >= 0, "write failure: the file is readable")
    resume_and_compare(job, np_, out, ref, "write failure")



CASES = {"consistency": case_consistency, "full720p": case_full720p,
         "bad_inputs": case_bad_inputs, "keep_going": case_keep_going,
         "odd_videos": case_odd_videos, "resume": case_resume, "depth": case_depth,
         "depth_model_size": case_depth_model_size, "vda": case_vda, "stages": case_stages,
         "vda_stream": case_vda_stream,
         "sigterm": case_sigterm, "crash": case_crash, "device": case_device,
         "rvm_resnet50": case_rvm_resnet50,
         "stall": case_stall, "slow_rank": case_slow_rank, "overlap": case_overlap}


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--exe", required=True)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--recipe-tool", default="")
    A = ap.parse_args()
    A.shared = os.environ.get("DM_SHARED") or A.shared  # same override as tc_shared_dir()
    A.work = os.path.join(A.work, A.case)
    shutil.rmtree(A.work, ignore_errors=True)
    os.makedirs(A.work)
    CASES[A.case]()
    print("PASS" if not FAILS else f"FAIL ({len(FAILS)}): {FAILS}")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
