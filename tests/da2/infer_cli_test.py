#!/usr/bin/env python3
"""End-to-end test of `depthmatte infer` (DA-V2): the golden case_square image written as a
lossless PNG, recipe weights from dm_make_recipe_weights, --input-size 140; the .safetensors
output must match the golden `depth` within 1e-4 * std (golden README section 5), the .png
output must be 16-bit gray of the source size; bad arguments must fail with one clear line.
Usage: infer_cli_test.py DEPTHMATTE MAKE_RECIPE SHARED_DIR WORK_DIR   (exit 77 = skipped)"""
import json, os, struct, subprocess, sys

exe, make_recipe, shared, work = sys.argv[1:5]
golden = os.path.join(shared, "golden/da2_vits/case_square.safetensors")
recipe = os.path.join(shared, "golden/da2_vits/recipe.json")
if not os.path.exists(golden):
    print("*** SKIPPED: golden/da2_vits not found ***"); sys.exit(77)
os.makedirs(work, exist_ok=True)
failures = 0

def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    failures += 0 if cond else 1

def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n)); data = f.read()
    return hdr, data

def tensor(hdr, data, name):
    e = hdr[name]; b, end = e["data_offsets"]
    raw = data[b:end]
    if e["dtype"] == "U8": return e["shape"], raw
    return e["shape"], struct.unpack("<%df" % ((end - b) // 4), raw)

hdr, data = read_st(golden)
(h, w, _), rgb = tensor(hdr, data, "image_rgb_u8")
_, want = tensor(hdr, data, "depth")
raw = os.path.join(work, "square.rgb"); png = os.path.join(work, "square.png")
open(raw, "wb").write(rgb)
subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                "-s", f"{w}x{h}", "-i", raw, "-frames:v", "1", png], check=True)
weights = os.path.join(work, "da2_recipe.safetensors")
subprocess.run([make_recipe, recipe, weights], check=True)

def infer(*args):
    r = subprocess.run([exe, "infer", *args], capture_output=True, text=True)
    return r.returncode, r.stderr.strip()

out_st = os.path.join(work, "depth.safetensors")
rc, err = infer("--model", "da2_vits", "--weights", weights, "--image", png, "--out", out_st, "--input-size", "140", "--threads", "2")
check(rc == 0, f"infer -> safetensors (rc {rc} {err})")
if rc == 0:
    oh, od = read_st(out_st)
    shape, got = tensor(oh, od, "depth")
    check(shape == [h, w], f"depth shape {shape}")
    mean = sum(want) / len(want)
    std = (sum((x - mean) ** 2 for x in want) / len(want)) ** 0.5
    err_max = max(abs(a - b) for a, b in zip(got, want))
    check(err_max <= 1e-4 * std, f"depth vs golden: max abs {err_max:.3e} <= {1e-4 * std:.3e} (1e-4*std)")
out_png = os.path.join(work, "depth.png")
rc, err = infer("--model", "da2_vits", "--weights", weights, "--image", png, "--out", out_png, "--input-size", "140")
check(rc == 0, f"infer -> png (rc {rc} {err})")
if rc == 0:
    p = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height,pix_fmt",
                        "-of", "json", out_png], capture_output=True, text=True, check=True)
    s = json.loads(p.stdout)["streams"][0]
    check((s["width"], s["height"], s["pix_fmt"]) == (w, h, "gray16be"), f"png {s}")

tiny = os.path.join(work, "tiny.png")
subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=13x40",
                "-frames:v", "1", tiny], check=True)
bad = [
    (["--weights", "/nonexistent.safetensors", "--image", png, "--out", out_png], "cannot load weights"),
    (["--weights", os.path.join(shared, "golden/rvm_mbv3/sequence.safetensors"), "--image", png, "--out", out_png], "is missing"),
    (["--weights", weights, "--image", tiny, "--out", out_png], "smaller than one 14x14 patch"),
    (["--weights", weights, "--image", png, "--out", out_png, "--input-size", "5000"], "14..4096"),
    (["--weights", weights, "--image", png, "--out", out_png, "--input-size", "10"], "14..4096"),
    (["--weights", weights, "--image", png, "--out", os.path.join(work, "d.jpg")], ".png or .safetensors"),
]
for args, msg in bad:
    rc, err = infer("--model", "da2_vits", *args)
    check(rc != 0 and msg in err and len(err.splitlines()) == 1, f"error '{msg}': rc {rc}, '{err}'")
rc, err = infer("--model", "resnet", "--weights", weights, "--image", png, "--out", out_png)
check(rc != 0 and "unknown model" in err, f"unknown model: rc {rc}")
print("PASS" if failures == 0 else f"FAIL ({failures})")
sys.exit(1 if failures else 0)
