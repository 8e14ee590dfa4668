#!/usr/bin/env python3
"""End-to-end tests of the input options (label e2e): target_fps, max_res and image sequences
through `depthmatte run` under mpiexec, checked with h5py and the ffmpeg/ffprobe CLIs.

Usage: inputs_test.py CASE --exe DEPTHMATTE --mpiexec MPIEXEC --shared SHARED --work WORK
       --recipe-tool DM_MAKE_RECIPE_WEIGHTS
Cases: select, max_res, images, bad_inputs, vda. Exit 0 pass, 1 fail, 77 skip (printed loudly).
Depth uses DA-V2 with the deterministic recipe weights of golden/da2_vits (only the arithmetic
is official) at a small input size: per-frame depth, so a selected row equals the full run's
row of the same source frame bit for bit."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIPPED: h5py/numpy not importable by {sys.executable}: {e}")
    sys.exit(77)

A = None
FAILS = []
DOG = "videos/lossless/dog_320x180_ffv1.mkv"      # 29.97 fps, 100 frames, RGB-exact
JUGGLE = "videos/lossless/juggle_256x144_ffv1.mkv"  # 24 fps, 64 frames, RGB-exact


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
            print(f"SKIPPED: {p} missing (shared data folder {A.shared})")
            sys.exit(77)
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            print(f"SKIPPED: the {tool} CLI is not installed")
            sys.exit(77)


def weights(model="da2_vits"):
    recipe = shared(f"golden/{model}/recipe.json")
    need(recipe)
    if not A.recipe_tool or not os.path.exists(A.recipe_tool):
        print("SKIPPED: dm_make_recipe_weights not built")
        sys.exit(77)
    w = os.path.join(A.work, f"{model}_recipe.safetensors")
    if not os.path.exists(w):
        subprocess.run([A.recipe_tool, recipe, w], check=True, capture_output=True)
    return w


def job(name, inputs, depth=True, matting=False, ranks_split=True, **top):
    out = os.path.join(A.work, name + ".h5")
    j = {"inputs": inputs, "output": {"path": out, "overwrite": True, "chunk_frames": 8}}
    if depth:
        j["depth"] = {"weights": weights(), "input_size": 28, "dtype": "float32"}
    if matting:
        j["matting"] = {"weights": shared("models/rvm_mobilenetv3.safetensors"),
                        "outputs": ["alpha"], "warmup_frames": 4}
    if ranks_split:
        j["plan"] = {"split_videos": "always", "min_chunk_frames": 8}
    j.update(top)
    path = os.path.join(A.work, name + ".yaml")
    with open(path, "w") as f:
        json.dump(j, f, indent=1)
    return path, out


def run(np_, jobfile, *extra, timeout=400, cmd="run"):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    c = [A.mpiexec, "--oversubscribe", "-np", str(np_), A.exe, cmd, jobfile, "--quiet", *extra]
    t = time.time()
    try:
        p = subprocess.run(c, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        check(False, f"no hang: {' '.join(c)} finished within {timeout} s")
        return 124, "", ""
    print(f"  [{time.time() - t:.1f} s, rc {p.returncode}] {' '.join(c[3:])}")
    return p.returncode, p.stdout, p.stderr


def run_ok(np_, jobfile, what):
    rc, _, err = run(np_, jobfile)
    check(rc == 0, f"{what}: exit 0 ({err.strip()[-400:]})")


def ffprobe_pts(path):
    """(pts, pts_time) of every frame, from ffprobe (independent of our reader)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=pts,pts_time", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True).stdout
    rows = [l.split(",") for l in out.split() if l]
    return np.array([int(r[0]) for r in rows]), np.array([float(r[1]) for r in rows])


def ffprobe_frames(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames,width,height", "-of",
                          "json", path], capture_output=True, text=True).stdout
    s = json.loads(out)["streams"][0]
    return int(s["nb_read_frames"]), int(s["width"]), int(s["height"])


def video(f):
    return f["videos/00000"]


def export(h5, kinds, out_dir):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    p = subprocess.run([A.exe, "export", h5, "--kind", kinds, "--out", out_dir, "--quiet"],
                       capture_output=True, text=True, env=env, timeout=300)
    check(p.returncode == 0, f"export {kinds} of {os.path.basename(h5)}: exit 0 "
          f"({p.stderr.strip()[-300:]})")
    return os.path.join(out_dir, "00000")


# --------------------------------------------------------------------------------------------
def case_select():
    """target_fps 10 on a real clip (2 ranks, the video split): row count, source frames, pts
    and time_s from ffprobe; the selected rows equal the full run's rows of those frames."""
    dog, jug = shared(DOG), shared(JUGGLE)
    need(dog, jug)
    j, out = job("dog_fps10", [dog], target_fps=10)
    run_ok(2, j, "dog target_fps 10")
    pts, pts_time = ffprobe_pts(dog)
    n_src = len(pts)
    step = max(1, round((30000 / 1001) / 10))  # the official rule (Python's round): 3
    want = list(range(0, n_src, step))
    with h5py.File(out) as f:
        g = video(f)
        T = int(g.attrs["frames"])
        check(n_src == 100 and T == len(want) == 34 and g["depth"].shape == (34, 180, 320),
              f"dog 29.97 fps at target_fps 10: {T} rows (ffprobe: {n_src} frames, step {step})")
        src = g["source_frame"][...]
        check(list(src) == want, f"source_frame = 0, 3, ..., 99: {list(src[:5])}...{src[-1]}")
        check(np.array_equal(g["pts"][...], pts[src]),
              "pts of every row = ffprobe pts of its source frame")
        check(float(np.abs(g["time_s"][...] - (pts_time[src] - pts_time[0])).max()) < 1e-6,
              "time_s = ffprobe pts_time of the source frame")
        a = dict(g.attrs)
        check((a["frame_step"], a["source_frames"], a["fps_num"], a["fps_den"],
               a["source_fps_num"], a["source_fps_den"]) == (3, 100, 10000, 1001, 30000, 1001),
              f"attributes frame_step 3, source_frames 100, fps 10000/1001 of 30000/1001")
        check(bool(np.all(g["done"][...] == 1)) and int(f["ranks/frames"][...].sum()) == 34,
              "every row done, /ranks frames sum to 34")
    # the juggling clip (24 fps: round(2.4) = 2): rows = the full run's rows 0, 2, 4, ...
    jf, outf = job("jug_full", [jug])
    run_ok(2, jf, "juggle, every frame")
    js, outs = job("jug_fps10", [jug], target_fps=10)
    run_ok(2, js, "juggle target_fps 10")
    with h5py.File(outf) as ff, h5py.File(outs) as fs:
        full, sel = video(ff), video(fs)
        d_full, d_sel = full["depth"][...], sel["depth"][...]
        check(d_sel.shape == (32, 144, 256) and list(sel["source_frame"][...]) == list(range(0, 64, 2)),
              f"juggle 24 fps at target_fps 10: {d_sel.shape[0]} rows, source frames 0, 2, ..., 62")
        check(np.array_equal(d_sel, d_full[::2]), "depth rows = the full run's rows of the same "
              "source frames, bit for bit")
        check(np.array_equal(sel["pts"][...], full["pts"][...][::2]), "pts = the full run's")
        check(list(full["source_frame"][...]) == list(range(64)) and int(full.attrs["frame_step"]) == 1,
              "a run without target_fps: source_frame = row, frame_step 1")
    # export reads the source through the same selection (preview needs the source pixels)
    d = export(outs, "preview,depth-png16", os.path.join(A.work, "exp_fps10"))
    n, w, h = ffprobe_frames(os.path.join(d, "preview.mp4"))
    check(n == 32, f"export preview of the target_fps run: {n} frames (32 rows)")
    pngs = [x for x in os.listdir(os.path.join(d, "depth16")) if x.endswith(".png")] \
        if os.path.isdir(os.path.join(d, "depth16")) else []
    check(len(pngs) == 32, f"export depth-png16: {len(pngs)} images")
    with open(os.path.join(d, "depth16.json")) as fp:
        side = json.load(fp)
    check(side.get("frame_step") == 2 and side.get("source_frames") == list(range(0, 64, 2)),
          "depth16.json: frame_step 2, source_frames 0, 2, ..., 62")


def case_max_res():
    """max_res 160 on the 320x180 clip = the depth of a clip pre-scaled by the ffmpeg CLI's
    scale filter (lossless rawvideo rgb24): the decoded frames are identical (the same swscale
    bicubic pass; test_video_select: 0 bytes differ), so the bound is 1e-6 * std (measured
    bitwise equal). With matting and target_fps together on the juggling clip."""
    dog, jug = shared(DOG), shared(JUGGLE)
    need(dog, jug, shared("models/rvm_mobilenetv3.safetensors"))
    j, out = job("dog_res160", [dog], max_res=160, max_frames=16)
    run_ok(2, j, "dog max_res 160")
    pre = os.path.join(A.work, "dog_160x90_rgb24.nut")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", dog, "-frames:v", "16",
                    "-vf", "scale=160:90", "-pix_fmt", "rgb24", "-c:v", "rawvideo", pre],
                   check=True)
    jp, outp = job("dog_prescaled", [pre])
    run_ok(2, jp, "pre-scaled clip")
    with h5py.File(out) as fa, h5py.File(outp) as fb:
        a, b = video(fa)["depth"][...], video(fb)["depth"][...]
        check(a.shape == (16, 90, 160) and b.shape == a.shape, f"depth {a.shape} at 160x90")
        g = video(fa)
        check((int(g.attrs["width"]), int(g.attrs["height"]), int(g.attrs["source_width"]),
               int(g.attrs["source_height"]), int(g.attrs["max_res"])) == (160, 90, 320, 180, 160),
              "attributes width/height 160x90 of source 320x180, max_res 160")
        err = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
        std = float(b.std())
        check(std > 0 and err <= 1e-6 * std,
              f"max_res depth vs pre-scaled clip: max |diff| {err:.3g} = {err / std:.3g} * std "
              f"(bound 1e-6 * std)")
    # matting + depth with max_res 128 and target_fps 12 (24 fps: step 2), 2 ranks
    jm, outm = job("jug_res128_fps12", [jug], matting=True, max_res=128, target_fps=12)
    run_ok(2, jm, "juggle matting + depth, max_res 128, target_fps 12")
    with h5py.File(outm) as f:
        g = video(f)
        check(g["alpha"].shape == (32, 72, 128) and g["depth"].shape == (32, 72, 128),
              f"alpha {g['alpha'].shape}, depth {g['depth'].shape}: 32 rows at 128x72")
        check(bool(np.all(g["done"][...] == 1)) and float(g["alpha"][...].std()) > 0,
              "every row done, alpha not constant")
    d = export(outm, "preview,alpha-png", os.path.join(A.work, "exp_res128"))
    n, w, h = ffprobe_frames(os.path.join(d, "preview.mp4"))
    check(n == 32 and h == 72, f"export preview: {n} frames, height {h} (32 rows at 72)")


def make_pngs(clip, folder):
    os.makedirs(folder, exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", clip, "-pix_fmt", "rgb24",
                    os.path.join(folder, "f_%05d.png")], check=True)


def case_images():
    """PNG frames made here from the lossless clip: a folder (fps in its item) and a glob
    (image_fps, with target_fps) give the clip's rows; export reads the sequence back."""
    jug = shared(JUGGLE)
    need(jug)
    frames = os.path.join(A.work, "frames")
    make_pngs(jug, frames)
    jc, outc = job("clip", [jug])
    run_ok(2, jc, "the clip")
    ji, outi = job("seq_folder", [{"path": frames, "fps": 24}])
    run_ok(2, ji, "image sequence (folder, fps 24)")
    jg, outg = job("seq_glob", [os.path.join(frames, "f_*.png")], image_fps=24, target_fps=12)
    run_ok(2, jg, "image sequence (glob, image_fps 24, target_fps 12)")
    with h5py.File(outc) as fc, h5py.File(outi) as fi, h5py.File(outg) as fg:
        c, i, g = video(fc), video(fi), video(fg)
        dc, di = c["depth"][...], i["depth"][...]
        check(di.shape == dc.shape == (64, 144, 256), f"folder: {di.shape[0]} rows of 256x144")
        check(np.array_equal(di, dc), "folder: depth rows = the clip's, bit for bit")
        dt = float(np.abs(i["time_s"][...] - c["time_s"][...]).max())
        check(dt <= 1e-3, f"folder: time_s = the clip's within {dt:.2g} s (bound 1 ms: the "
              "clip's timestamps are in ms, the sequence's in 1/24 s)")
        check(list(i["source_frame"][...]) == list(range(64)) and list(i["pts"][...]) == list(range(64)),
              "folder: source_frame and pts = 0..63 (image2: pts in 1/fps)")
        check((int(i.attrs["images"]), s(i.attrs["codec"]), int(i.attrs["fps_num"]),
               int(i.attrs["fps_den"])) == (1, "png", 24, 1), "folder: attributes images 1, png, 24/1 fps")
        check(np.array_equal(g["depth"][...], dc[::2]) and list(g["source_frame"][...]) == list(range(0, 64, 2)),
              "glob at target_fps 12: the clip's rows 0, 2, ..., 62")
    d = export(outg, "preview", os.path.join(A.work, "exp_seq"))
    n, w, h = ffprobe_frames(os.path.join(d, "preview.mp4"))
    check(n == 32, f"export preview of the glob run: {n} frames (32 rows; source re-read as a "
          "sequence, no audio)")


def case_vda():
    """Video Depth Anything (recipe weights of golden/vda_vits, input 42) with target_fps 12 and
    max_res 80 on the 24 fps juggling clip, windows round-robin over 2 ranks: equal, bit for
    bit, to VDA on a clip pre-selected and pre-scaled by the ffmpeg CLI (every 2nd frame,
    scale=80:46, lossless rawvideo rgb24): the windows run over the kept frames."""
    jug = shared(JUGGLE)
    need(jug)
    vda = {"model": "vda_vits", "weights": weights("vda_vits"), "input_size": 42,
           "dtype": "float32"}
    pre = os.path.join(A.work, "jug_every2_80x46.nut")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", jug, "-vf",
                    "select=not(mod(n\\,2)),scale=80:46", "-fps_mode", "passthrough",
                    "-pix_fmt", "rgb24", "-c:v", "rawvideo", pre], check=True)
    outs = []
    for name, inputs, top in (("vda_sel", [jug], {"target_fps": 12, "max_res": 80}),
                              ("vda_pre", [pre], {})):
        j, out = job(name, inputs, depth=False, ranks_split=False, **top)
        with open(j) as f:
            jd = json.load(f)
        jd["depth"] = vda
        jd["plan"] = {"split_videos": "always"}
        with open(j, "w") as f:
            json.dump(jd, f)
        run_ok(2, j, name)
        outs.append(out)
    with h5py.File(outs[0]) as fa, h5py.File(outs[1]) as fb:
        a, b = video(fa)["depth"][...], video(fb)["depth"][...]
        check(a.shape == (32, 46, 80) and b.shape == a.shape, f"VDA rows {a.shape}")
        check(list(video(fa)["source_frame"][...]) == list(range(0, 64, 2)),
              "VDA rows record source frames 0, 2, ..., 62")
        check(a.shape == b.shape and np.array_equal(a, b) and float(a.std()) > 0,
              "VDA at target_fps 12 + max_res 80 = VDA on the pre-selected, pre-scaled clip, "
              "bit for bit")


def s(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def one_error_line(err, name):
    lines = [l for l in err.splitlines() if l.startswith("depthmatte:")]
    return len(lines) == 1 and name in lines[0], lines


def case_bad_inputs():
    """Bad image-sequence inputs and options: exit non-zero, one line naming the path (and
    the frame file), no hang, nothing left under the output name (2 ranks)."""
    jug = shared(JUGGLE)
    need(jug)
    frames = os.path.join(A.work, "frames")
    make_pngs(jug, frames)
    empty = os.path.join(A.work, "empty")
    os.makedirs(empty)
    garbage = os.path.join(A.work, "garbage")
    shutil.copytree(frames, garbage)
    with open(os.path.join(garbage, "f_00007.png"), "w") as f:
        f.write("not a png\n")
    sizes = os.path.join(A.work, "sizes")
    shutil.copytree(frames, sizes)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i",
                    os.path.join(frames, "f_00002.png"), "-vf", "scale=128:72",
                    os.path.join(sizes, "f_00003.png")], check=True)
    cases = [
        ("empty folder", [{"path": empty, "fps": 24}], {}, "empty"),
        ("glob without a match", [{"path": os.path.join(A.work, "nothing_*.png"), "fps": 24}], {},
         "nothing_*.png"),
        ("unreadable (garbage) frame", [{"path": garbage, "fps": 24}], {}, "f_00007.png"),
        ("frame of another size", [{"path": sizes, "fps": 24}], {}, "f_00003.png"),
        ("no frame rate", [frames], {}, "frames"),
        ("fps given for a video file", [{"path": jug, "fps": 24}], {}, "juggle_256x144_ffv1.mkv"),
        ("missing folder", [{"path": os.path.join(A.work, "no_such_frames"), "fps": 24}], {},
         "no_such_frames"),
        ("odd max_res", [jug], {"max_res": 161}, "max_res"),
    ]
    for what, inputs, top, name in cases:
        j, out = job("bad", inputs, **top)
        if os.path.exists(out):
            os.remove(out)
        rc, _, err = run(2, j, timeout=120)
        ok, lines = one_error_line(err, name)
        check(rc not in (0, 124) and ok, f"{what}: exit {rc}, one line naming {name}: {lines}")
        # errors found at probe time come before the file exists; decode errors mark the video
        # failed inside a file that is then not complete
        if os.path.exists(out):
            with h5py.File(out) as f:
                check(int(f.attrs["complete"]) == 0 and s(video(f).attrs["status"]) == "failed",
                      f"{what}: the output is marked incomplete, the video failed")


CASES = {"select": case_select, "max_res": case_max_res, "images": case_images,
         "bad_inputs": case_bad_inputs, "vda": case_vda}


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
    A.shared = os.environ.get("DM_SHARED") or A.shared
    A.work = os.path.join(A.work, A.case)
    shutil.rmtree(A.work, ignore_errors=True)
    os.makedirs(A.work)
    CASES[A.case]()
    print("PASS" if not FAILS else f"FAIL ({len(FAILS)}): {FAILS}")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
