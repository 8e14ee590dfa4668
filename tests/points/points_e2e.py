#!/usr/bin/env python3
"""`depthmatte points` checked independently with h5py + NumPy (label e2e / points).

Usage: points_e2e.py CASE --exe DEPTHMATTE --mpiexec MPIEXEC --shared SHARED --work WORK
                     [--recipe-tool DM_MAKE_RECIPE_WEIGHTS]
Cases:
  ply   PLY point clouds of the synthetic scene files written by test_points (points_scene):
        header, vertex count and every x, y, z = the back-projection of the stored depth
        (read with h5py), colours = the frames of a lossless RGB clip decoded by the ffmpeg CLI.
  real  `depthmatte run` with vda_vits_metric (recipe weights) on 30 frames of a real clip, then
        `points` with detections written here: every box depth = a direct NumPy median of the
        HDF5 depth over the pixel centres of the box's central region, X/Y = the pinhole
        formulas, track figures recomputed in NumPy; CSV and JSON outputs agree; --cloud on the
        same clip with --stride 4 --frames 2:4 against ffmpeg's RGB and the stored depth.
Exit 0 pass, 1 fail, 77 skip (data, h5py or a tool missing; printed loudly)."""
import argparse
import csv
import json
import os
import subprocess
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIPPED: h5py/numpy not importable by {sys.executable}: {e}")
    sys.exit(77)

A = None
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def skip(why):
    print(f"SKIPPED: {why}")
    sys.exit(77)


def points(*args):
    p = subprocess.run([A.exe, "points", *args], capture_output=True, text=True, timeout=300)
    print(f"  [rc {p.returncode}] points {' '.join(args)}")
    if p.stdout.strip():
        print("  " + p.stdout.strip().replace("\n", "\n  "))
    if p.stderr.strip():
        print("  stderr: " + p.stderr.strip().replace("\n", "\n  stderr: "))
    return p


def rgb_frames(path, w, h):
    """Frames decoded by the ffmpeg CLI, (T, H, W, 3) uint8."""
    p = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt",
                        "rgb24", "-"], capture_output=True)
    if p.returncode != 0:
        skip(f"ffmpeg could not decode {path}: {p.stderr.decode()[-200:]}")
    return np.frombuffer(p.stdout, np.uint8).reshape(-1, h, w, 3)


def read_ply(path):
    """A binary little-endian PLY with x y z float + red green blue uchar: header lines and the
    vertex records, parsed here without the program's code."""
    data = open(path, "rb").read()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    n = int([l for l in header if l.startswith("element vertex ")][0].split()[2])
    rec = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"),
                    ("blue", "u1")])
    body = data[end:]
    check(len(body) == n * rec.itemsize, f"{os.path.basename(path)}: {n} vertices x 15 bytes "
          f"= {len(body)} bytes after the header")
    return header, np.frombuffer(body[:n * rec.itemsize], rec)


def expected_cloud(depth, rgb, k, stride):
    """Back-projection of pixel centres (c + 0.5, r + 0.5) with a valid Z (finite, > 0)."""
    fx, fy, cx, cy = k
    rr, cc = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride]
    z = depth[rr, cc].astype(np.float64)
    ok = np.isfinite(z) & (z > 0)
    z, rr, cc = z[ok], rr[ok], cc[ok]
    x = (cc + 0.5 - cx) * z / fx
    y = (rr + 0.5 - cy) * z / fy
    return (x.astype(np.float32), y.astype(np.float32), z.astype(np.float32),
            rgb[rr, cc] if rgb is not None else None)


def check_cloud(ply, depth, rgb, k, stride, what):
    header, v = read_ply(ply)
    check(header[:2] == ["ply", "format binary_little_endian 1.0"] and
          header[-7:] == ["property float x", "property float y", "property float z",
                          "property uchar red", "property uchar green", "property uchar blue",
                          "end_header"], f"{what}: PLY header {header[1]}, x y z float, RGB uchar")
    x, y, z, c = expected_cloud(depth, rgb, k, stride)
    check(len(v) == len(z), f"{what}: vertex count {len(v)} = valid pixels at stride {stride} "
          f"({len(z)})")
    if len(v) != len(z):
        return
    err = max(float(np.abs(v["x"] - x).max()), float(np.abs(v["y"] - y).max()),
              float(np.abs(v["z"] - z).max()))
    scale = float(np.abs(z).max())
    print(f"  {what}: max |xyz - back-projection| = {err:.3g} m (float32 ulp of {scale:.3g} m "
          f"= {np.spacing(np.float32(scale)):.3g})")
    check(err <= 2 * float(np.spacing(np.float32(scale))),
          f"{what}: x, y, z = back-projection of the stored depth (within 2 float32 ulp)")
    check(np.array_equal(v["z"], z), f"{what}: z equals the stored depth exactly")
    if c is not None:
        got = np.stack([v["red"], v["green"], v["blue"]], -1)
        check(np.array_equal(got, c), f"{what}: colours = ffmpeg's RGB of the source frame")


def case_ply():
    work = A.work
    scene = os.path.join(work, "scene_f16.h5")
    if not os.path.exists(scene):
        skip(f"{scene} missing (written by the points_scene test)")
    # A lossless RGB clip of the scene's size (80 x 60, 6 frames) as the colour source.
    clip = os.path.join(work, "scene_rgb.mkv")
    p = subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=80x60:rate=8:duration=0.75", "-c:v", "ffv1", "-pix_fmt",
                        "bgr0", clip], capture_output=True)
    if p.returncode != 0:
        skip(f"ffmpeg could not write {clip}: {p.stderr.decode()[-200:]}")
    rgb = rgb_frames(clip, 80, 60)
    k = (50.0, 50.0, 40.0, 30.0)
    for name, stride in (("scene_f16.h5", 1), ("scene_f32.h5", 3)):
        out = os.path.join(work, f"cloud_{name[:-3]}")
        r = points(os.path.join(work, name), "--cloud", out, "--intrinsics", "50,50,40,30",
                   "--source", clip, "--stride", str(stride), "--frames", "1:3")
        check(r.returncode == 0, f"{name}: --cloud exit 0")
        with h5py.File(os.path.join(work, name)) as f:
            depth = f["videos/00000/depth"][...].astype(np.float32)
        files = sorted(os.listdir(out))
        check(files == ["00000_000001.ply", "00000_000002.ply"], f"{name}: frames 1:3 -> {files}")
        for t in (1, 2):
            ply = os.path.join(out, f"00000_{t:06d}.ply")
            if os.path.exists(ply):
                check_cloud(ply, depth[t], rgb[t], k, stride, f"{name} frame {t}")
        check(not any(f.endswith(".tmp") for f in files), f"{name}: no temporary file left")
    # relative depth needs a conversion for clouds too; intrinsics are required
    r = points(os.path.join(work, "scene_rel.h5"), "--cloud", os.path.join(work, "cloud_rel"),
               "--hfov", "60", "--source", clip)
    check(r.returncode == 1 and "relative inverse depth" in r.stderr and
          len(r.stderr.strip().splitlines()) == 1, "relative depth without conversion refused")
    r = points(os.path.join(work, "scene_rel.h5"), "--cloud", os.path.join(work, "cloud_rel"),
               "--intrinsics", "50,50,40,30", "--inverse-depth-scale", "1,0", "--source", clip,
               "--frames", "0:1")
    check(r.returncode == 0, "relative depth with --inverse-depth-scale 1,0: exit 0")
    with h5py.File(os.path.join(work, "scene_rel.h5")) as f:
        d = f["videos/00000/depth"][0].astype(np.float64)
    with np.errstate(divide="ignore"):
        z = (1.0 / d).astype(np.float32)  # Z = 1 / (1 * d + 0)
    check_cloud(os.path.join(work, "cloud_rel", "00000_000000.ply"), z, rgb[0], k, 1,
                "relative 1/d")
    r = points(os.path.join(work, "scene_f32.h5"), "--cloud", os.path.join(work, "cloud_x"),
               "--intrinsics", "50,50,40,30")
    check(r.returncode == 1 and "scene.mkv" in r.stderr, "missing source video: error names it")


def make_recipe():
    recipe = os.path.join(A.shared, "golden/vda_vits/recipe.json")
    if not os.path.exists(recipe):
        skip(f"{recipe} missing")
    if not A.recipe_tool or not os.path.exists(A.recipe_tool):
        skip("dm_make_recipe_weights not built")
    wts = os.path.join(A.work, "vda_vits_recipe.safetensors")
    subprocess.run([A.recipe_tool, recipe, wts], check=True, capture_output=True)
    return wts


def numpy_box(depth, box, region):
    """The median rule done directly: pixel centres inside the central region, valid = finite
    and > 0 (docs/points.md)."""
    x1, y1, x2, y2 = box
    bx, by = (x1 + x2) / 2, (y1 + y2) / 2
    hw, hh = region * (x2 - x1) / 2, region * (y2 - y1) / 2
    H, W = depth.shape
    xc = np.arange(W) + 0.5
    yc = np.arange(H) + 0.5
    mx = (xc >= bx - hw) & (xc < bx + hw)
    my = (yc >= by - hh) & (yc < by + hh)
    vals = depth[np.ix_(my, mx)].astype(np.float64).ravel()
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return (float(np.median(vals)) if len(vals) else float("nan")), len(vals)


def res_skipped_ok(res, rows, n_skip):
    return len(res["skipped"]) == n_skip and len(res["detections"]) == len(rows) - n_skip


def case_real():
    clip = os.path.join(A.shared, "videos/lossless/juggle_256x144_ffv1.mkv")
    if not os.path.exists(clip):
        skip(f"{clip} missing")
    wts = make_recipe()
    out = os.path.join(A.work, "real_metric.h5")
    # The documented example job (30 frames of the juggling clip, vda_vits_metric), with the
    # output and the recipe weights moved into the test's folder.
    job = os.path.join(A.src, "configs", "points_metric.yaml")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    p = subprocess.run([A.mpiexec, "--oversubscribe", "-np", "1", A.exe, "run", job, "--quiet",
                        "--set", f"output.path={out}", "--set", f"depth.weights={wts}"],
                       env=env, capture_output=True, text=True, timeout=400)
    check(p.returncode == 0, f"run configs/points_metric.yaml (vda_vits_metric): exit 0 "
          f"({p.stderr.strip()[-300:]})")
    with h5py.File(out) as f:
        g = f["videos/00000"]
        depth = g["depth"][...]
        ts = g["time_s"][...]
        check(g["depth"].attrs["units"] in (b"m", "m"), "depth units m")
    T, H, W = depth.shape
    # Detections: three tracks over the clip (boxes of varied size and position, fractional
    # corners), one box in frame 29 near the border, one with region 1.0 via a second call.
    rng = np.random.default_rng(12)
    rows = []
    for track, (x0, y0, bw, bh, dx, dy) in {3: (20.3, 30.6, 41.2, 37.9, 3.1, 0.7),
                                             8: (150.0, 60.0, 60.0, 50.0, -2.2, 1.4),
                                             11: (100.5, 10.25, 20.0, 18.0, 0.0, 2.0)}.items():
        for t in range(0, T, 2):
            j = rng.uniform(-0.5, 0.5, 2)
            x1, y1 = x0 + dx * t / 2 + j[0], y0 + dy * t / 2 + j[1]
            rows.append((t, track, x1, y1, min(x1 + bw, W), min(y1 + bh, H)))
    rows.append((29, 20, 0.0, 100.0, 30.0, 144.0))
    # Boxes on pixels the metric head gave 0 m (ReLU'd; not valid, never in a median): a 4 x 4
    # box centred on such a pixel of frames 5 and 7, and one on a pixel with the most zero
    # neighbours (often skipped: no valid pixel at all).
    for t, track in ((5, 30), (7, 31)):
        zr = np.argwhere(depth[t] <= 0)
        if len(zr):
            r0, c0 = zr[len(zr) // 2]
            rows.append((t, track, max(c0 - 1.5, 0.0), max(r0 - 1.5, 0.0), min(c0 + 2.5, W),
                         min(r0 + 2.5, H)))
    zero = (depth[9] <= 0).astype(np.float64)
    nb = sum(np.roll(np.roll(zero, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    r0, c0 = np.unravel_index(np.argmax(nb[2:-2, 2:-2]), nb[2:-2, 2:-2].shape)
    r0, c0 = r0 + 2, c0 + 2
    rows.append((9, 32, c0 - 1.0, r0 - 1.0, c0 + 2.0, r0 + 2.0))
    # an 8 x 8 box whose central 4 x 4 pixels mix 0 m and valid depth (frame 11)
    mixed = [(r, c) for r in range(4, H - 4) for c in range(4, W - 4)
             if 0 < np.sum(depth[11, r - 2:r + 2, c - 2:c + 2] <= 0) < 16]
    if mixed:
        r0, c0 = mixed[len(mixed) // 2]
        rows.append((11, 33, c0 - 4.0, r0 - 4.0, c0 + 4.0, r0 + 4.0))
    det = os.path.join(A.work, "real_det.csv")
    with open(det, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "track", "x1", "y1", "x2", "y2", "class", "conf"])
        for r in rows:
            w.writerow([r[0], r[1], repr(r[2]), repr(r[3]), repr(r[4]), repr(r[5]), "ball", 0.75])
    k = (200.0, 210.0, 127.5, 71.0)
    kstr = ",".join(str(v) for v in k)
    for region in (0.5, 1.0):
        js = os.path.join(A.work, f"real_points_{region}.json")
        r = points(out, "--detections", det, "--intrinsics", kstr, "--region", str(region),
                   "--out", js)
        check(r.returncode == 0, f"points region {region}: exit 0")
        res = json.load(open(js))
        located = {(d["track"], d["frame"]): d for d in res["detections"]}
        skipped = {(d["track"], d["frame"]) for d in res["skipped"]}
        worst, n_ok, n_skip, with_zeros = 0.0, 0, 0, 0
        for (t, tr, x1, y1, x2, y2) in rows:
            z, n = numpy_box(depth[t], (x1, y1, x2, y2), region)
            partial = 0 < n < numpy_box(np.abs(depth[t]) + 1, (x1, y1, x2, y2), region)[1]
            if np.isnan(z):
                n_skip += 1
                check((tr, t) in skipped, f"track {tr} frame {t}: no valid pixel -> skipped")
                continue
            d = located.get((tr, t))
            if d is None:
                check(False, f"track {tr} frame {t} located")
                continue
            u, v = (x1 + x2) / 2, (y1 + y2) / 2
            xs, ys = (u - k[2]) * z / k[0], (v - k[3]) * z / k[1]
            e = max(abs(d["z_m"] - z), abs(d["x_m"] - xs), abs(d["y_m"] - ys))
            worst = max(worst, e)
            with_zeros += partial
            n_ok += d["pixels"] == n and e <= 1e-12 * max(1.0, z) and d["time_s"] == ts[t]
        print(f"  region {region}: {n_ok}/{len(rows) - n_skip} boxes equal NumPy (median, pixel "
              f"count, X, Y, time), worst abs difference {worst:.3g} m, {n_skip} skipped")
        check(n_ok == len(rows) - n_skip, f"region {region}: every box = the NumPy median rule")
        check(with_zeros >= 1, f"region {region}: {with_zeros} located boxes hold pixels of 0 m, "
              "left out of the median (the validity rule is exercised)")
        check(res_skipped_ok(res, rows, n_skip), f"region {region}: {n_skip} skipped boxes "
              "reported, counted in the JSON")
        # track figures from the located points, recomputed here
        for tr in res["tracks"]:
            pts = sorted((d for d in res["detections"] if d["track"] == tr["track"]),
                         key=lambda d: d["frame"])
            P = np.array([[d["x_m"], d["y_m"], d["z_m"]] for d in pts])
            tt = np.array([d["time_s"] for d in pts])
            if len(P) < 2:
                continue
            steps = np.linalg.norm(np.diff(P, axis=0), axis=1)
            speed = steps / np.diff(tt)
            med = np.median(speed)
            mad = np.median(np.abs(speed - med))
            want = {"path_length_m": steps.sum(), "displacement_m": np.linalg.norm(P[-1] - P[0]),
                    "mean_speed_m_s": steps.sum() / (tt[-1] - tt[0]),
                    "max_speed_m_s": speed.max(), "median_speed_m_s": med, "mad_speed_m_s": mad}
            want["tortuosity"] = want["path_length_m"] / want["displacement_m"]
            ok = all(abs(tr[key] - val) <= 1e-9 * max(1.0, abs(val)) for key, val in want.items())
            ok &= tr["outlier_steps"] == int(np.sum(speed > med + 3 * max(mad, 1e-9 * med)))
            check(ok, f"region {region}: track {tr['track']}: path {tr['path_length_m']:.4g} m, "
                  f"tortuosity {tr['tortuosity']:.4g}, speeds, {tr['outlier_steps']} outliers "
                  f"= NumPy")
    # CSV output: same numbers as the JSON (printed to 9 significant digits)
    oc = os.path.join(A.work, "real_points.csv")
    r = points(out, "--detections", det, "--intrinsics", kstr, "--out", oc)
    check(r.returncode == 0 and os.path.exists(oc) and
          os.path.exists(os.path.join(A.work, "real_points_tracks.csv")), "CSV outputs written")
    res = json.load(open(os.path.join(A.work, "real_points_0.5.json")))
    with open(oc) as f:
        got = list(csv.DictReader(f))
    check(len(got) == len(res["detections"]) and all(
        abs(float(g["z_m"]) - d["z_m"]) <= 1e-8 * d["z_m"] and int(g["track"]) == d["track"]
        for g, d in zip(got, res["detections"])), f"CSV rows ({len(got)}) = JSON detections")
    with open(os.path.join(A.work, "real_points_tracks.csv")) as f:
        tracks = list(csv.DictReader(f))
    check([int(t["track"]) for t in tracks] == [t["track"] for t in res["tracks"]],
          "tracks CSV lists the JSON tracks")
    # point clouds of frames 2, 3 at stride 4, colours against ffmpeg's decode
    rgb = rgb_frames(clip, W, H)
    cdir = os.path.join(A.work, "real_cloud")
    r = points(out, "--cloud", cdir, "--intrinsics", kstr, "--stride", "4", "--frames", "2:4")
    check(r.returncode == 0, "--cloud on the real clip: exit 0")
    for t in (2, 3):
        check_cloud(os.path.join(cdir, f"00000_{t:06d}.ply"), depth[t], rgb[t], k, 4,
                    f"real frame {t}")
    # the documented example: configs/detections_example.csv on this file
    ex = os.path.join(A.src, "configs", "detections_example.csv")
    js = os.path.join(A.work, "example_points.json")
    r = points(out, "--detections", ex, "--hfov", "60", "--out", js)
    check(r.returncode == 0, "configs/detections_example.csv with --hfov 60: exit 0")
    if r.returncode == 0:
        res = json.load(open(js))
        f = 0.5 * W / np.tan(np.radians(30))
        with open(ex) as fh:
            ex_rows = list(csv.DictReader(fh))
        ok = len(res["detections"]) == len(ex_rows) and len(res["tracks"]) == 2
        for d, e in zip(res["detections"], ex_rows):
            box = [float(e[c]) for c in ("x1", "y1", "x2", "y2")]
            z, n = numpy_box(depth[int(e["frame"])], box, 0.5)
            xs = ((box[0] + box[2]) / 2 - W / 2) * z / f
            ok &= d["pixels"] == n and abs(d["z_m"] - z) <= 1e-12 * z and \
                abs(d["x_m"] - xs) <= 1e-9 and d["class"] == e["class"]
        check(ok, f"example: {len(ex_rows)} boxes, 2 tracks, Z = NumPy median, X with "
              f"fx = (W/2)/tan(30 deg) = {f:.4f}")
    # bad inputs against a real file: frame beyond the 30 rows, --frames beyond
    bad = os.path.join(A.work, "real_bad.csv")
    with open(bad, "w") as f:
        f.write("frame,track,x1,y1,x2,y2\n30,1,10,10,20,20\n")
    r = points(out, "--detections", bad, "--hfov", "60")
    check(r.returncode == 1 and "beyond the video" in r.stderr and "30 frames" in r.stderr,
          "frame 30 of 30 refused")
    r = points(out, "--cloud", cdir, "--hfov", "60", "--frames", "28:31")
    check(r.returncode == 1 and "has 30 frames" in r.stderr, "--frames beyond the video refused")


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["ply", "real"])
    ap.add_argument("--exe", required=True)
    ap.add_argument("--mpiexec", default="mpiexec")
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--recipe-tool", default="")
    ap.add_argument("--src", default=os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), help="source tree (configs/)")
    A = ap.parse_args()
    os.makedirs(A.work, exist_ok=True)
    {"ply": case_ply, "real": case_real}[A.case]()
    print(f"{'FAIL' if FAILS else 'PASS'}: {len(FAILS)} failed checks")
    for f in FAILS:
        print("  failed: " + f)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
