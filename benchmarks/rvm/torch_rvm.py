#!/usr/bin/env python3
"""Times the official RobustVideoMatting (MobileNetV3, or ResNet50 with --variant resnet50) on CPU,
side by side with bench_rvm_cpu.

Reads the same raw rgb24 frames as bench_rvm_cpu (file of K frames, H*W*3 bytes each, frame t of
the run = frame t mod K), runs N warm-up + M timed frames with the recurrent state carried from
frame to frame (as the official inference loop does), and prints one RESULT line:

    RESULT rvm impl=torch_eager threads=2 frames=20 fps=... ms_median=... ms_min=...

Model: MattingNetwork(--variant) (deep guided filter) imported from --official (a work tree
of PeterL1n/RobustVideoMatting, never part of this repository), weights from our safetensors
file (official key names; F16 values upcast to float32; project_seg.* absent, unused).
--compare FILE: a safetensors file with `pha` (1,1,H,W) and `fgr` (1,3,H,W) of the last timed
frame written by bench_rvm_cpu --dump; prints max |ours - torch| for both (apples to apples).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import numpy as np


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--official", required=True, help="RobustVideoMatting work tree")
    p.add_argument("--weights", required=True, help="rvm_mobilenetv3.safetensors")
    p.add_argument("--frames", required=True, help="raw rgb24 frames (K*H*W*3 bytes)")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--ratio", type=float, required=True, help="downsample_ratio (same as ours)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--timed", type=int, default=20)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--jit", action="store_true",
                   help="torch.jit.script + freeze, as the official inference_speed_test.py")
    p.add_argument("--compare", help="safetensors with pha/fgr of our last timed frame")
    p.add_argument("--variant", choices=["mobilenetv3", "resnet50"], default="mobilenetv3")
    return p.parse_args()


def load_model(args, torch):
    sys.path.insert(0, os.path.abspath(args.official))
    from model.model import MattingNetwork  # official code, from --official
    from safetensors.numpy import load_file

    model = MattingNetwork(args.variant).eval()
    sd = {}
    for name, arr in load_file(args.weights).items():
        t = torch.from_numpy(np.ascontiguousarray(arr))
        sd[name] = t.float() if t.is_floating_point() else t
    res = model.load_state_dict(sd, strict=False)
    missing = [k for k in res.missing_keys if not k.startswith("project_seg.")]
    if missing or res.unexpected_keys:
        sys.exit(f"torch_rvm: weight mismatch: missing {missing[:5]} unexpected "
                 f"{res.unexpected_keys[:5]}")
    if args.jit:
        model = torch.jit.freeze(torch.jit.script(model))
    return model


def main():
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    model = load_model(args, torch)

    fsize = args.width * args.height * 3
    raw = np.fromfile(args.frames, dtype=np.uint8)
    if raw.size == 0 or raw.size % fsize:
        sys.exit(f"torch_rvm: {args.frames}: {raw.size} bytes is not a multiple of {fsize}")
    frames = torch.from_numpy(raw.reshape(-1, args.height, args.width, 3))
    k = frames.shape[0]

    times = []
    with torch.inference_mode():
        rec = [None] * 4
        for i in range(args.warmup + args.timed):
            t0 = time.perf_counter()
            # Same input convention as ours and the goldens: CHW(u8) / 255 in float32.
            src = frames[i % k].permute(2, 0, 1).unsqueeze(0).float().div(255.0)
            fgr, pha, *rec = model(src, *rec, args.ratio)
            dt = time.perf_counter() - t0
            if i >= args.warmup:
                times.append(dt)

    impl = "torch_jit" if args.jit else "torch_eager"
    total = sum(times)
    tag = "rvm" if args.variant == "mobilenetv3" else "rvm_resnet50"
    print(f"RESULT {tag} impl={impl} threads={args.threads} frames={len(times)} "
          f"size={args.width}x{args.height} ratio={args.ratio} fps={len(times) / total:.3f} "
          f"ms_median={1e3 * statistics.median(times):.1f} ms_min={1e3 * min(times):.1f} "
          f"maxrss_mb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} "
          f"torch={torch.__version__}")

    if args.compare:
        from safetensors.numpy import load_file
        ours = load_file(args.compare)
        for name, t in (("pha", pha), ("fgr", fgr)):
            a = ours[name].astype(np.float32)
            b = t.numpy()
            if a.shape != b.shape:
                sys.exit(f"torch_rvm: {name}: ours {a.shape} torch {b.shape}")
            d = np.abs(a - b)
            print(f"COMPARE {tag} {name} max_abs_diff={d.max():.3e} mean_abs_diff={d.mean():.3e} "
                  f"frame={args.warmup + args.timed - 1}")


if __name__ == "__main__":
    main()
