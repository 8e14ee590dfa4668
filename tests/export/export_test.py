#!/usr/bin/env python3
"""Tests of `depthmatte export` on real clips (label export), checked with h5py and FFmpeg's
own tools (ffprobe; the ffmpeg CLI decodes the outputs back, libvpx-vp9 for VP9 alpha).

Usage: export_test.py CASE --exe DEPTHMATTE --mpiexec MPIEXEC --shared SHARED --work WORK
                      [--recipe-tool TOOL]
Cases: fixture (runs the job that makes the input file; the other cases need it), alpha_webm,
alpha_prores, depth_images, image_sequences, video_kinds, depth_vis_norm, audio, mpi, bad_inputs.
Exit 0 pass, 1 fail, 77 skip (data, h5py or the fixture missing; printed loudly)."""
import argparse
import hashlib
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
JUGGLE = "videos/lossless/juggle_256x144_ffv1.mkv"  # 24 fps, no audio, RGB-exact
NASA = "videos/nasa_13013.mp4"                      # 30000/1001 stream 3 480x270, AAC audio
FRAMES = 16


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def shared(rel):
    return os.path.join(A.shared, rel)


def skip(why):
    print(f"SKIPPED: {why}")
    sys.exit(77)


def env():
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMP_NUM_THREADS="1")


def fixture_path():
    return os.path.join(A.root, "fixture", "both.h5")


def export(args, np_=1, timeout=300, fsize_kb=None):
    # fsize_kb: the rank runs under `ulimit -f` (writes past it fail with EFBIG, SIGXFSZ ignored)
    wrap = ["bash", "-c", f'ulimit -f {fsize_kb}; trap "" XFSZ; exec "$0" "$@"'] if fsize_kb else []
    cmd = [A.mpiexec, "--oversubscribe", "-np", str(np_), *wrap, A.exe, "export", *args]
    t = time.time()
    try:
        p = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        check(False, f"no hang: {' '.join(cmd)} within {timeout} s")
        return 124, "", ""
    print(f"  [{time.time() - t:.1f} s, rc {p.returncode}] export {' '.join(args)}")
    return p.returncode, p.stdout, p.stderr


def need_fixture():
    if not os.path.exists(fixture_path()):
        skip(f"{fixture_path()} missing (test export_fixture did not run or failed)")
    return fixture_path()


def ffprobe(path, *entries, stream="v:0"):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
                          ",".join(entries), "-of", "json", path], capture_output=True,
                         text=True).stdout
    return json.loads(out or "{}")


def frame_times(path, stream="v:0"):
    j = ffprobe(path, "frame=best_effort_timestamp_time", stream=stream)
    return [float(f["best_effort_timestamp_time"]) for f in j.get("frames", [])]


def decode_raw(path, pix_fmt, w, h, bytes_per_px, vcodec=None):
    """Frames decoded by the ffmpeg CLI as rawvideo, (N, bytes) uint8."""
    cmd = ["ffmpeg", "-v", "error"] + (["-c:v", vcodec] if vcodec else []) + \
          ["-i", path, "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    n = int(round(w * h * bytes_per_px))
    return np.frombuffer(raw, np.uint8).reshape(-1, n)


def video(f, i=0):
    return f["videos"][sorted(f["videos"].keys())[i]]


def sha(path):
    with open(path, "rb") as fp:
        return hashlib.sha256(fp.read()).hexdigest()


# --------------------------------------------------------------------------------------------
def case_fixture():
    """The input of every other case: RVM alpha + foreground and DA-V2 depth (recipe weights,
    input 70) of the first 16 frames of two real clips, written by `depthmatte run` (2 ranks)."""
    for p in (JUGGLE, NASA, "models/rvm_mobilenetv3.safetensors", "golden/da2_vits/recipe.json"):
        if not os.path.exists(shared(p)):
            skip(f"{shared(p)} missing")
    if not A.recipe_tool or not os.path.exists(A.recipe_tool):
        skip("dm_make_recipe_weights not built")
    d = os.path.join(A.work, "fixture")
    os.makedirs(d, exist_ok=True)
    wts = os.path.join(d, "da2_recipe.safetensors")
    subprocess.run([A.recipe_tool, shared("golden/da2_vits/recipe.json"), wts], check=True,
                   capture_output=True)
    job = {"inputs": [shared(JUGGLE), shared(NASA)], "max_frames": FRAMES,
           "output": {"path": fixture_path() + ".tmp", "overwrite": True, "chunk_frames": 8},
           "matting": {"weights": shared("models/rvm_mobilenetv3.safetensors"),
                       "outputs": ["alpha", "foreground"]},
           "depth": {"weights": wts, "input_size": 70, "dtype": "float32"}}
    jp = os.path.join(d, "job.yaml")
    with open(jp, "w") as fp:
        json.dump(job, fp)
    p = subprocess.run([A.mpiexec, "--oversubscribe", "-np", "2", A.exe, "run", jp, "--quiet"],
                       env=env(), capture_output=True, text=True, timeout=500)
    if check(p.returncode == 0, f"fixture job ran ({p.stderr.strip()[-300:]})"):
        os.replace(fixture_path() + ".tmp", fixture_path())


def case_alpha_webm():
    h5 = need_fixture()
    with h5py.File(h5) as f:
        alpha = video(f, 0)["alpha"][...]
    T, H, W = alpha.shape
    for lossless in (True, False):
        out = os.path.join(A.work, "lossless" if lossless else "lossy")
        rc, _, err = export([h5, "--kind", "alpha-webm", "--out", out, "--video", "0", "--quiet"]
                            + (["--lossless"] if lossless else []))
        check(rc == 0, f"exit 0 ({err.strip()[-200:]})")
        path = os.path.join(out, "00000", "alpha_vp9.webm")
        # FFmpeg's native vp9 decoder drops the alpha plane: decode with libvpx-vp9
        raw = decode_raw(path, "yuva420p", W, H, 1.5 + 1, vcodec="libvpx-vp9")
        a = raw[:, -W * H:].reshape(-1, H, W)
        check(a.shape[0] == T, f"{T} frames decoded ({a.shape[0]})")
        if a.shape[0] != T:
            continue
        d = np.abs(a.astype(int) - alpha.astype(int))
        if lossless:
            check(int(d.max()) == 0, f"lossless: alpha bit-exact (max |d| {d.max()})")
        else:
            # bounds for the default (crf 30): measured mean 0.21 / max 41 levels on this clip
            # (the errors sit on the matte's edges); bounds leave ~4x / ~2x room
            check(float(d.mean()) < 1.0 and int(d.max()) <= 96,
                  f"lossy: mean |d| {d.mean():.3f} < 1.0, max |d| {d.max()} <= 96 (of 255)")


def case_alpha_prores():
    h5 = need_fixture()
    with h5py.File(h5) as f:
        alpha = video(f, 0)["alpha"][...]
    T, H, W = alpha.shape
    out = os.path.join(A.work, "prores")
    rc, _, err = export([h5, "--kind", "alpha-prores", "--out", out, "--video", "00000", "--quiet"])
    check(rc == 0, f"exit 0 ({err.strip()[-200:]})")
    path = os.path.join(out, "00000", "alpha_prores4444.mov")
    j = ffprobe(path, "stream=codec_name,profile,pix_fmt,nb_frames")["streams"][0]
    check(j["codec_name"] == "prores" and "4444" in j.get("profile", ""), f"ProRes 4444 ({j})")
    raw = decode_raw(path, "yuva444p12le", W, H, 8)  # the prores decoder's own format
    a12 = raw.view("<u2")[:, 3 * W * H:].reshape(-1, H, W).astype(float)
    check(a12.shape[0] == T, f"{T} frames")
    # stored: a10 = round(a * 1023 / 255) (quantisation <= 0.5/1023 of full scale); ProRes codes
    # alpha losslessly, the decoder returns 12 bits (<= 0.5/4095 more): in 8-bit units
    bound = 255 * (0.5 / 1023 + 0.5 / 4095) + 1e-6
    d = np.abs(a12 / 4095 * 255 - alpha)
    check(float(d.max()) <= bound, f"alpha within 10-bit quantisation: max |d| {d.max():.4f} <= {bound:.4f}")
    check(np.array_equal(np.round(a12 / 4095 * 255), alpha), "round(decoded * 255) == alpha")


def read_exr_z(path, w, h):
    """Channel Z of an EXR through dm_exr_dump (OpenEXRCore; Python has no EXR reader here)."""
    out = subprocess.run([A.exr_dump, path], capture_output=True, check=True).stdout
    head, raw = out.split(b"\n", 1)
    check(head.split() == [str(w).encode(), str(h).encode()], f"{os.path.basename(path)}: {w}x{h}")
    return np.frombuffer(raw, "<f4").reshape(h, w)


def case_depth_images():
    h5 = need_fixture()
    with h5py.File(h5) as f:
        depth = video(f, 0)["depth"][...].astype(np.float64)
    T, h, w = depth.shape
    out = os.path.join(A.work, "depth")
    rc, _, err = export([h5, "--kind", "depth-png16,depth-exr", "--out", out, "--video", "0",
                         "--quiet"])
    check(rc == 0, f"exit 0 ({err.strip()[-200:]})")
    d = os.path.join(out, "00000")
    with open(os.path.join(d, "depth16.json")) as fp:
        side = json.load(fp)
    check(side["frames"] == list(range(T)), "sidecar lists every frame")
    check(side["min"] == float(depth.min()) and side["max"] == float(depth.max()),
          f"sidecar min/max = depth min/max ({side['min']}, {side['max']})")
    worst_png, worst_exr = 0.0, 0.0
    for t in range(T):
        v = decode_raw(os.path.join(d, "depth16", f"{t:06d}.png"), "gray16le", w, h, 2)
        v = v.view("<u2").reshape(h, w).astype(np.float64)
        restored = side["offset"] + side["scale"] * v
        worst_png = max(worst_png, float(np.abs(restored - depth[t]).max()))
        e = read_exr_z(os.path.join(d, "depth_exr", f"{t:06d}.exr"), w, h)
        worst_exr = max(worst_exr, float(np.abs(e - depth[t].astype(np.float32)).max()))
    bound = side["scale"] / 2 * (1 + 1e-6)
    check(worst_png <= bound, f"png16 restored within scale/2: {worst_png:.3g} <= {bound:.3g}")
    check(worst_exr == 0.0, f"exr channel Z values exact (max |d| {worst_exr})")
    # the header names the one channel Z (chlist: name, NUL, pixel type 2 = FLOAT)
    with open(os.path.join(d, "depth_exr", "000000.exr"), "rb") as fp:
        head = fp.read(1000)
    check(b"chlist\x00" in head and b"Z\x00\x02\x00\x00\x00" in head, "EXR header: one float channel Z")
    check(side["scale"] == (depth.max() - depth.min()) / 65535, "scale = (max - min) / 65535")
    # metric depth (units "m", as vda_vits_metric writes): millimetres, value = round(d / 0.001)
    metric = os.path.join(A.work, "metric.h5")
    shutil.copy(h5, metric)
    with h5py.File(metric, "r+") as f:
        ds = video(f, 0)["depth"]
        ds[...] = (depth * 10).astype(np.float32)  # 0..25 m
        ds.attrs.modify("units", "m")
        ds.attrs.modify("kind", "metric depth (distance along the optical axis)")
        dm = ds[...].astype(np.float64)
    out2 = os.path.join(A.work, "depth_m")
    rc, _, err = export([metric, "--kind", "depth-png16", "--out", out2, "--video", "0", "--frames", "0:3",
                         "--quiet"])
    check(rc == 0, f"metric: exit 0 ({err.strip()[-200:]})")
    with open(os.path.join(out2, "00000", "depth16.json")) as fp:
        side = json.load(fp)
    check(side["units"] == "m" and side["scale"] == 0.001 and side["offset"] == 0,
          f"metric sidecar: units m, scale 0.001, offset 0 ({side['units']}, {side['scale']})")
    ok = True
    for t in range(3):
        v = decode_raw(os.path.join(out2, "00000", "depth16", f"{t:06d}.png"), "gray16le", w, h, 2)
        v = v.view("<u2").reshape(h, w).astype(np.int64)
        ok &= np.array_equal(v, np.clip(np.rint(dm[t] / 0.001), 0, 65535).astype(np.int64))
    check(ok, "metric png16 = round(depth in mm)")


def case_image_sequences():
    """alpha-png and rgba-png are lossless: decoded back they equal the HDF5 rows."""
    h5 = need_fixture()
    with h5py.File(h5) as f:
        g = video(f, 1)
        alpha, fg = g["alpha"][...], g["foreground"][...]
    T, H, W = alpha.shape
    out = os.path.join(A.work, "seq")
    rc, _, err = export([h5, "--kind", "alpha-png,rgba-png", "--out", out, "--video", "1",
                         "--frames", "3:9", "--quiet"])
    check(rc == 0, f"exit 0 ({err.strip()[-200:]})")
    d = os.path.join(out, "00001")
    check(sorted(os.listdir(os.path.join(d, "alpha"))) == [f"{t:06d}.png" for t in range(3, 9)],
          "--frames 3:9: alpha/000003.png .. 000008.png")
    ok_a = ok_c = True
    for t in range(3, 9):
        a = decode_raw(os.path.join(d, "alpha", f"{t:06d}.png"), "gray", W, H, 1).reshape(H, W)
        ok_a &= np.array_equal(a, alpha[t])
        r = decode_raw(os.path.join(d, "rgba", f"{t:06d}.png"), "rgba", W, H, 4).reshape(H, W, 4)
        ok_c &= np.array_equal(r[..., 3], alpha[t]) and np.array_equal(r[..., :3], fg[t])
    check(ok_a, "alpha-png == HDF5 alpha")
    check(ok_c, "rgba-png == HDF5 foreground + alpha")
    # without a foreground dataset the colour comes from the source: the lossless FFV1 clip
    # decodes to exact RGB, so rgba-png's colour equals `ffmpeg -pix_fmt rgb24` of the source
    nofg = os.path.join(A.work, "no_fg.h5")
    shutil.copy(h5, nofg)
    with h5py.File(nofg, "r+") as f:
        del video(f, 0)["foreground"]
        alpha0 = video(f, 0)["alpha"][...]
    out2 = os.path.join(A.work, "seq_nofg")
    rc, _, err = export([nofg, "--kind", "rgba-png", "--out", out2, "--video", "0", "--frames", "10:13",
                         "--quiet"])
    check(rc == 0, f"no foreground: exit 0 ({err.strip()[-200:]})")
    H0, W0 = alpha0.shape[1:]
    src = decode_raw(shared(JUGGLE), "rgb24", W0, H0, 3).reshape(-1, H0, W0, 3)
    ok = True
    for t in range(10, 13):
        r = decode_raw(os.path.join(out2, "00000", "rgba", f"{t:06d}.png"), "rgba", W0, H0, 4).reshape(H0, W0, 4)
        ok &= np.array_equal(r[..., :3], src[t]) and np.array_equal(r[..., 3], alpha0[t])
    check(ok, "no foreground: rgba-png colour == the source's RGB (frames 10-12), alpha == file")


def source_times(f, i):
    g = video(f, i)
    pts = g["pts"][...]
    num, den = int(g["pts"].attrs["time_base_num"]), int(g["pts"].attrs["time_base_den"])
    return (pts - pts[0]) * num / den


def case_video_kinds():
    """Every video kind: codec, pixel format, frames, frame rate and frame times of the rows."""
    h5 = need_fixture()
    out = os.path.join(A.work, "kinds")
    kinds = "alpha-webm,alpha-prores,composite,depth-vis,preview,transcode,contact-sheet"
    rc, stdout, err = export([h5, "--kind", kinds, "--out", out, "--json"])
    check(rc == 0, f"exit 0 ({err.strip()[-300:]})")
    check("frames/s" in err and "ETA" in err, "progress lines on stderr")
    listing = json.loads(stdout)
    check(len(listing) == 14 and all(os.path.exists(o["path"]) for o in listing),
          f"--json lists 14 outputs that exist ({len(listing)})")
    want = {"alpha_vp9.webm": ("vp9", "yuv420p", 0.0005 + 1e-6),  # WebM: millisecond timestamps
            "alpha_prores4444.mov": ("prores", "yuva444p12le", 1e-6),
            "composite.mp4": ("h264", "yuv420p", 1e-6), "depth_vis.mp4": ("h264", "yuv420p", 1e-6),
            "preview.mp4": ("h264", "yuv420p", 1e-6), "transcode.mp4": ("h264", "yuv420p", 1e-6)}
    with h5py.File(h5) as f:
        for i in range(2):
            g = video(f, i)
            vid = sorted(f["videos"].keys())[i]
            times = source_times(f, i)
            fps = f"{int(g.attrs['fps_num'])}/{int(g.attrs['fps_den'])}"
            H, W = int(g.attrs["height"]), int(g.attrs["width"])
            for name, (codec, pix, tol) in want.items():
                path = os.path.join(out, vid, name)
                s = ffprobe(path, "stream=codec_name,pix_fmt,r_frame_rate,width,height")["streams"][0]
                t = frame_times(path)
                check(s["codec_name"] == codec and s["pix_fmt"] == pix and s["r_frame_rate"] == fps,
                      f"{vid}/{name}: {s['codec_name']} {s['pix_fmt']} {s['r_frame_rate']} (want {codec} {pix} {fps})")
                check(len(t) == FRAMES and float(np.abs(np.array(t) - times).max()) <= tol,
                      f"{vid}/{name}: {len(t)} frames at the source's row times (tol {tol} s)")
                if name == "alpha_vp9.webm":
                    tags = ffprobe(path, "stream_tags=alpha_mode")["streams"][0].get("tags", {})
                    check(tags.get("alpha_mode") == "1", f"{vid}/{name}: alpha_mode 1 (VP9 alpha)")
                if name == "transcode.mp4":
                    ew = int(round(W * min(360, H) / H / 2)) * 2
                    check((s["width"], s["height"]) == (ew, min(360, H) & ~1),
                          f"{vid}/transcode {s['width']}x{s['height']} (height min(360, H), even width)")
                if name == "preview.mp4":
                    ph = min(360, H) & ~1
                    check(s["height"] == ph and abs(s["width"] - 3 * W * ph / H) <= 2,
                          f"{vid}/preview {s['width']}x{s['height']}: 3 panels side by side")
            # contact sheet: documented size (docs/export.md)
            N, tw = 8, 240
            th = int(round(tw * H / W))
            s = ffprobe(os.path.join(out, vid, "contact_sheet.png"), "stream=width,height")["streams"][0]
            ew, eh = 88 + N * tw + (N + 1) * 8, 40 + 3 * th + 4 * 8
            check((s["width"], s["height"]) == (ew, eh),
                  f"{vid}/contact_sheet.png {s['width']}x{s['height']} == {ew}x{eh}")
            # composite colour: fg*a + green*(1-a), through H.264 CRF 18
            fg, al = g["foreground"][...].astype(float), g["alpha"][...].astype(float)[..., None] / 255
            want_c = fg * al + np.array([120, 255, 155]) * (1 - al)
            c = decode_raw(os.path.join(out, vid, "composite.mp4"), "rgb24", W, H, 3).reshape(-1, H, W, 3)
            err_c = np.abs(c.astype(float) - want_c)
            check(float(err_c.mean()) < 4.0, f"{vid}/composite: mean |d| {err_c.mean():.2f} < 4 (H.264 CRF 18, BT.709)")


def case_depth_vis_norm():
    """depth-vis --palette grey: decoded grey = (d - lo) / (hi - lo) * 255 through H.264 (BT.709
    tv range); --percentiles 5,95 clips the tails (lo/hi from numpy's percentiles)."""
    h5 = need_fixture()
    with h5py.File(h5) as f:
        depth = video(f, 0)["depth"][...].astype(np.float64)
    T, h, w = depth.shape
    for pct in ((0, 100), (5, 95)):
        out = os.path.join(A.work, f"vis{pct[0]}")
        rc, _, err = export([h5, "--kind", "depth-vis", "--out", out, "--video", "0", "--palette", "grey",
                             "--percentiles", f"{pct[0]},{pct[1]}", "--quiet"])
        check(rc == 0, f"exit 0 ({err.strip()[-200:]})")
        lo, hi = np.percentile(depth, pct[0]), np.percentile(depth, pct[1])
        want = np.clip((depth - lo) / (hi - lo), 0, 1) * 255
        got = decode_raw(os.path.join(out, "00000", "depth_vis.mp4"), "rgb24", w, h, 3)
        got = got.reshape(-1, h, w, 3).astype(float).mean(axis=3)
        e = np.abs(got - want)
        check(got.shape[0] == T and float(e.mean()) < 3.0,
              f"percentiles {pct}: mean |grey - want| {e.mean():.2f} < 3 levels (H.264 CRF 18)")


def case_audio():
    """A source with audio gives outputs with audio of the same duration (within one audio
    frame); --frames cuts it; --no-audio drops it; a source without audio gives none."""
    h5 = need_fixture()
    out = os.path.join(A.work, "audio")
    rc, _, err = export([h5, "--kind", "alpha-webm,composite,alpha-prores,depth-vis,preview,transcode",
                         "--out", out, "--quiet"])
    check(rc == 0, f"exit 0 ({err.strip()[-300:]})")
    with h5py.File(h5) as f:
        fps = int(video(f, 1).attrs["fps_num"]) / int(video(f, 1).attrs["fps_den"])
    vdur = FRAMES / fps
    for name, codec in (("alpha_vp9.webm", "opus"), ("composite.mp4", "aac"),
                        ("alpha_prores4444.mov", "aac"), ("depth_vis.mp4", "aac"),
                        ("preview.mp4", "aac"), ("transcode.mp4", "aac")):
        path = os.path.join(out, "00001", name)
        a = ffprobe(path, "stream=codec_name,sample_rate", stream="a:0").get("streams", [])
        check(len(a) == 1 and a[0]["codec_name"] == codec, f"00001/{name}: {codec} audio ({a})")
        if not a:
            continue
        at = frame_times(path, "a:0")
        pk = ffprobe(path, "packet=pts_time,duration_time", stream="a:0")["packets"]
        end = float(pk[-1]["pts_time"]) + float(pk[-1]["duration_time"])
        start = float(pk[0]["pts_time"])
        frame_s = float(pk[1]["duration_time"])
        check(abs((end - max(start, 0)) - vdur) <= frame_s + 1e-3,
              f"00001/{name}: audio {max(start, 0):.3f}..{end:.3f} s, video {vdur:.3f} s (one audio frame {frame_s:.3f} s)")
        none = ffprobe(os.path.join(out, "00000", name), "stream=codec_name", stream="a").get("streams", [])
        check(not none, f"00000/{name}: no audio (the source has none)")
    # cut: --frames 6:14 -> audio from 6/fps to 14/fps
    out2 = os.path.join(A.work, "audio_cut")
    rc, _, err = export([h5, "--kind", "composite,alpha-webm", "--out", out2, "--video", "1",
                         "--frames", "6:14", "--quiet"])
    check(rc == 0, f"cut: exit 0 ({err.strip()[-300:]})")
    for name in ("composite.mp4", "alpha_vp9.webm"):
        path = os.path.join(out2, "00001", name)
        t = frame_times(path)
        pk = ffprobe(path, "packet=pts_time,duration_time", stream="a:0")["packets"]
        a0 = float(pk[0]["pts_time"])
        a1 = float(pk[-1]["pts_time"]) + float(pk[-1]["duration_time"])
        fr = float(pk[1]["duration_time"])
        check(len(t) == 8 and abs(t[0] - 6 / fps) < 1e-3, f"cut {name}: 8 frames from {t[0] if t else None:.4f} s")
        check(abs(a0 - 6 / fps) <= fr + 1e-3 and abs(a1 - 14 / fps) <= fr + 1e-3,
              f"cut {name}: audio {a0:.3f}..{a1:.3f} s ~ {6 / fps:.3f}..{14 / fps:.3f} s (+- {fr:.3f})")
    out3 = os.path.join(A.work, "audio_none")
    rc, _, _ = export([h5, "--kind", "composite", "--out", out3, "--video", "1", "--no-audio", "--quiet"])
    a = ffprobe(os.path.join(out3, "00001", "composite.mp4"), "stream=codec_name", stream="a").get("streams", [])
    check(rc == 0 and not a, "--no-audio: no audio stream")


def case_mpi():
    """mpirun -np 2 (one video per rank) writes the same files as one rank, byte for byte."""
    h5 = need_fixture()
    kinds = "alpha-webm,alpha-prores,composite,alpha-png,depth-png16,depth-exr,depth-vis,preview,contact-sheet"
    trees = {}
    for n in (1, 2):
        out = os.path.join(A.work, f"np{n}")
        shutil.rmtree(out, ignore_errors=True)
        rc, stdout, err = export([h5, "--kind", kinds, "--out", out, "--frames", "0:8"], np_=n)
        check(rc == 0, f"np {n}: exit 0 ({err.strip()[-300:]})")
        files = {}
        for root, _, names in os.walk(out):
            for nm in names:
                p = os.path.join(root, nm)
                files[os.path.relpath(p, out)] = sha(p)
        trees[n] = files
        check(len(stdout.strip().splitlines()) == 20, f"np {n}: 20 listing lines (10 per video)")
    check(len(trees[1]) > 40 and trees[1] == trees[2],
          f"np 1 and np 2: same {len(trees[1])} files, byte for byte "
          f"(differ: {sorted(k for k in trees[1] if trees[1].get(k) != trees[2].get(k))[:5]})")
    check(not any(".part-" in k for k in trees[1]), "no temporary files left")


def case_bad_inputs():
    h5 = need_fixture()
    w = A.work
    out = os.path.join(w, "bad_out")

    def bad(args, want, what, **kw):
        rc, stdout, err = export(args, **kw)
        lines = [l for l in err.strip().splitlines() if l.startswith("depthmatte")]
        check(rc != 0 and any(want in l for l in lines),
              f"{what}: exit {rc} != 0, message with '{want}' ({err.strip()[-300:]})")
        return err

    txt = os.path.join(w, "not.h5")
    with open(txt, "w") as fp:
        fp.write("hello\n")
    bad([txt, "--kind", "alpha-png", "--out", out], "not.h5: not an HDF5 file", "text file")
    other = os.path.join(w, "other.h5")
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    bad([other, "--kind", "alpha-png", "--out", out], "other.h5: not a depthmatte", "other HDF5")
    bad([h5, "--kind", "alpha-png", "--out", out, "--video", "7"], "no video '7'", "unknown video")
    bad([h5, "--kind", "bogus", "--out", out], "unknown kind 'bogus'", "unknown kind")
    bad([h5, "--kind", "alpha-png", "--out", txt + "/sub"], "not.h5/sub", "unwritable DIR")
    bad([h5, "--kind", "alpha-png", "--out", out, "--frames", "10:99"], "outside its 16 frames",
        "--frames past the end")
    bad([h5, "--kind", "transcode", "--out", out, "--source", "0=" + os.path.join(w, "gone.mkv")],
        "gone.mkv: source of video 00000 not found", "moved source")
    moved = os.path.join(w, "moved_juggle.mkv")
    shutil.copy(shared(JUGGLE), moved)
    rc, _, err = export([h5, "--kind", "transcode", "--out", os.path.join(w, "moved_out"), "--video", "0",
                         "--source", f"00000={moved}", "--quiet"])
    check(rc == 0 and os.path.exists(os.path.join(w, "moved_out", "00000", "transcode.mp4")),
          f"--source ID=PATH: the moved source is used ({err.strip()[-200:]})")
    # depth-only file: a kind needing alpha names the video and the dataset
    donly = os.path.join(w, "depth_only.h5")
    shutil.copy(h5, donly)
    with h5py.File(donly, "r+") as f:
        for g in f["videos"].values():
            del g["alpha"], g["foreground"]
    bad([donly, "--kind", "alpha-webm", "--out", out], "video 00000: kind alpha-webm needs the alpha dataset",
        "absent dataset")
    # partial video: refused naming the missing rows, exported with --allow-partial
    part = os.path.join(w, "partial.h5")
    shutil.copy(h5, part)
    with h5py.File(part, "r+") as f:
        d = video(f, 1)["done"]
        v = d[...]
        v[5:9] = 0
        v[12] = 0
        d[...] = v
    bad([part, "--kind", "alpha-png", "--out", out], "video 00001 is incomplete: 5 of 16 rows not done (rows 5-8, 12)",
        "partial refused")
    po = os.path.join(w, "partial_out")
    rc, stdout, err = export([part, "--kind", "alpha-png,composite", "--out", po, "--allow-partial"])
    files = sorted(os.listdir(os.path.join(po, "00001", "alpha"))) if rc == 0 else []
    want = [f"{t:06d}.png" for t in range(16) if not (5 <= t < 9 or t == 12)]
    check(rc == 0 and files == want, f"--allow-partial: only the 11 done rows ({len(files)})")
    check("rows 5-8, 12 not done" in err, "--allow-partial: gaps listed in the summary")
    t = frame_times(os.path.join(po, "00001", "composite.mp4")) if rc == 0 else []
    with h5py.File(part) as f:
        times = source_times(f, 1)
    check(len(t) == 11 and np.allclose(t, [times[i] for i in range(16) if want.count(f"{i:06d}.png")], atol=1e-6),
          "--allow-partial video: the done rows at their source times")
    # disk full midway (file size limit; EFBIG like ENOSPC): one line, nothing under a final name
    full = os.path.join(w, "full_out")
    shutil.rmtree(full, ignore_errors=True)
    err = bad([h5, "--kind", "alpha-prores", "--out", full, "--video", "1", "--no-audio"],
              "alpha_prores4444.mov", "write error midway", fsize_kb=60)
    left = os.listdir(os.path.join(full, "00001")) if os.path.isdir(os.path.join(full, "00001")) else []
    check(left == [], f"write error: nothing left in the output folder ({left})")
    check("File too large" in err or "No space" in err, "write error: the cause is named")


CASES = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--exe", required=True)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--recipe-tool", default="")
    ap.add_argument("--exr-dump", default="")
    A = ap.parse_args()
    A.shared = os.environ.get("DM_SHARED") or A.shared
    os.makedirs(A.work, exist_ok=True)
    A.root = A.work
    if A.case != "fixture":
        A.work = os.path.join(A.work, A.case)
        shutil.rmtree(A.work, ignore_errors=True)
        os.makedirs(A.work)
    CASES[A.case]()
    if FAILS:
        print(f"{len(FAILS)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
