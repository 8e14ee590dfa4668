#!/usr/bin/env python3
"""Times the official Depth Anything V2 Small forward pass on CPU, beside bench_da2_cpu.

One process per input size, so that its peak RSS (getrusage ru_maxrss, which includes the
Python/torch runtime) describes that size only. Prints

    RESULT da2 impl=torch_eager size=518x924 threads=2 runs=3 ms_median=... ms_min=...
           maxrss_mb=... rss_after_load_mb=...

Model: DepthAnythingV2(encoder='vits', features=64, out_channels=[48,96,192,384]) imported from
--official (a work tree of DepthAnything/Depth-Anything-V2, never part of this repository);
weights from the safetensors file written by our recipe generator (official key names), loaded
with assign=True so that no second copy of the weights inflates the RSS.
Input: `input` (1,3,H,W) float32 from --inputs (the file bench_da2_cpu --dump writes, which also
holds our `depth`); without --inputs, a seeded normal tensor (timing only). With --inputs, prints
max |ours - torch| of the depth (apples to apples).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import numpy as np


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--official", required=True, help="Depth-Anything-V2 work tree")
    p.add_argument("--weights", required=True, help="recipe weights (safetensors)")
    p.add_argument("--height", type=int, default=518)
    p.add_argument("--width", type=int, default=518)
    p.add_argument("--inputs", help="safetensors with `input` (and our `depth`)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()

    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    rss_import = rss_mb()
    sys.path.insert(0, os.path.abspath(args.official))
    from depth_anything_v2.dpt import DepthAnythingV2  # official code, from --official

    model = DepthAnythingV2(encoder="vits", features=64, out_channels=[48, 96, 192, 384]).eval()
    sd = {k: v.float() for k, v in load_file(args.weights).items()}
    model.load_state_dict(sd, strict=True, assign=True)
    del sd
    rss_load = rss_mb()

    ours = None
    if args.inputs:
        ours = load_file(args.inputs)
        x = ours["input"].float().contiguous()
    else:
        x = torch.randn(1, 3, args.height, args.width, generator=torch.Generator().manual_seed(0))
    if tuple(x.shape) != (1, 3, args.height, args.width):
        sys.exit(f"torch_da2: input shape {tuple(x.shape)} != (1, 3, {args.height}, {args.width})")

    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.runs):
            t0 = time.perf_counter()
            depth = model(x)
            dt = time.perf_counter() - t0
            if i >= args.warmup:
                times.append(dt)

    print(f"RESULT da2 impl=torch_eager size={args.height}x{args.width} threads={args.threads} "
          f"runs={len(times)} ms_median={1e3 * statistics.median(times):.1f} "
          f"ms_min={1e3 * min(times):.1f} maxrss_mb={rss_mb():.0f} "
          f"rss_after_import_mb={rss_import:.0f} rss_after_load_mb={rss_load:.0f} "
          f"torch={torch.__version__}")

    if ours is not None and "depth" in ours:
        a = ours["depth"].float().reshape(-1).numpy()
        b = depth.float().reshape(-1).numpy()
        if a.size != b.size:
            sys.exit(f"torch_da2: depth has {a.size} values (ours) vs {b.size} (torch)")
        d = np.abs(a - b)
        std = float(b.std())
        print(f"COMPARE da2 size={args.height}x{args.width} max_abs_diff={d.max():.3e} "
              f"max_abs_diff_over_std={d.max() / std:.3e} mean_abs_diff={d.mean():.3e} "
              f"depth_std={std:.4f}")


if __name__ == "__main__":
    main()
