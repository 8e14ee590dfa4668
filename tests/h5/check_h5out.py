"""Independent read-back of the file written by test_h5out (mpirun) with h5py.

Checks what a user of the file sees: float16 depth decodes as numpy float16, strings are
readable, the layout and attributes follow docs/output.md, done markers match the rows written.
Usage: check_h5out.py FILE.h5 RANKS. Exit 77 (skip) when h5py is missing."""
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIP: h5py/numpy not importable by {sys.executable}: {e}")
    sys.exit(77)

path, ranks = sys.argv[1], int(sys.argv[2])
fails = []


def check(cond, what):
    if not cond:
        fails.append(what)
        print("FAIL:", what)


def s(x):
    return x.decode() if isinstance(x, bytes) else str(x)


with h5py.File(path, "r") as f:
    check(int(f.attrs["format_version"]) == 1, "format_version")
    check(int(f.attrs["complete"]) == 0 and int(f.attrs["failed_videos"]) == 2, "complete/failed")
    check(int(f.attrs["ranks"]) == ranks, "ranks attr")
    check(s(f.attrs["job_yaml"]).startswith("inputs:"), "job_yaml")
    check(s(f.attrs["created_utc"]).endswith("Z"), "created_utc")
    check(sorted(f["videos"].keys()) == ["00000", "00001", "00002"], "video ids")
    specs = {"00000": (10, 4, 6, 0), "00001": (7, 3, 5, 1)}
    for vid, (T, H, W, v) in specs.items():
        g = f["videos"][vid]
        check(g["alpha"].shape == (T, H, W) and g["alpha"].dtype == np.uint8, vid + " alpha")
        check(g["foreground"].shape == (T, H, W, 3), vid + " foreground shape")
        check(g["depth"].dtype == np.float16, vid + " depth float16")
        check(s(g["depth"].attrs["model"]) == "depth_anything_v2_small", vid + " depth model")
        check(g["depth"].shape == (T, H, W) and s(g["depth"].attrs["size"]) == "source",
              vid + " depth at source size")
        check(g["alpha"].compression == "gzip" and g["alpha"].chunks[0] == 3, vid + " chunks")
        t, y, x = np.meshgrid(np.arange(T), np.arange(H), np.arange(W), indexing="ij")
        want_a = ((v * 31 + t * 7 + y * 3 + x) % 256).astype(np.uint8)
        want_d = (0.25 * (v + t) + 0.125 * (y * 7 + x)).astype(np.float16)
        rows = T if v == 0 else 6
        done = g["done"][...]
        check(done.tolist() == [1] * rows + [0] * (T - rows), f"{vid} done {done.tolist()}")
        check(np.array_equal(g["alpha"][:rows], want_a[:rows]), vid + " alpha values")
        check(np.array_equal(g["depth"][:rows], want_d[:rows]), vid + " depth values")
        c = np.arange(3)
        want_f = ((v * 5 + t[..., None] * 11 + y[..., None] * 13 + x[..., None] * 17 + c * 19)
                  % 256).astype(np.uint8)
        check(np.array_equal(g["foreground"][:rows], want_f[:rows]), vid + " fgr values")
        check(g["pts"][:rows].tolist() == [i * 512 for i in range(rows)], vid + " pts")
    g0, g1, g2 = (f["videos"][k] for k in ("00000", "00001", "00002"))
    check(s(g0.attrs["status"]) == "ok" and s(g0.attrs["codec"]) == "h264", "video 0 attrs")
    check([int(g.attrs["stream_index"]) for g in (g0, g1, g2)] == [2, 0, -1], "stream_index attrs")
    check(int(g0.attrs["fps_num"]) == 24 and int(g0["pts"].attrs["time_base_den"]) == 12288, "fps/tb")
    check(s(g1.attrs["status"]) == "failed" and "decode failed" in s(g1.attrs["error"]), "video 1 failed")
    check(s(g2.attrs["status"]) == "failed" and "Invalid data" in s(g2.attrs["error"]), "video 2 failed")
    check("alpha" not in g2, "no datasets for a probe failure")
    check(f["ranks"]["frames"][...].tolist() == [100 + r for r in range(ranks)], "ranks frames")
    check(all(len(s(h)) > 0 for h in f["ranks"]["host"][...]), "ranks host")

print("PASS" if not fails else f"FAIL ({len(fails)})")
sys.exit(1 if fails else 0)
