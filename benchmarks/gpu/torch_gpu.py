#!/usr/bin/env python3
"""Times the official PyTorch DA-V2 Small / RVM MobileNetV3 / VDA Small on a GPU (or the CPU),
beside bench_gpu, on the frames that bench_gpu dumped (--ours), and prints how far the two
outputs are apart.

    RESULT gpu_<model> impl=torch_eager|torch_compile precision=P size=WxH batch=B frames=F
           fps=... ms_median=... dev_mem_mb=... peak_alloc_mb=... compile_s=...
    COMPARE gpu_<model> impl=... precision=P max_abs_diff=... max_abs_diff_over_std=...
           mean_abs_diff_over_std=...

Modes (--modes, one process runs them in order on one loaded model): float32 is eager float32
with TF32 off (strict, like ours); float16 / bfloat16 run under torch.autocast (the official
code's own mixed precision); compile wraps the model in torch.compile (default mode) under
autocast bfloat16, its first call (compilation) reported as compile_s and not timed.
Each timed iteration does what bench_gpu's does: host u8 frames -> device -> /255 (and the
ImageNet normalisation for DA-V2/VDA) -> network -> float32 on the host.
  da2  the F frames of --ours in ONE batched forward (F = bench_gpu --batch)
  rvm  one frame, recurrent state carried over; the comparison (pha and fgr together) uses the
       first frame from a zero state (bench_gpu --dump recomputes that one too)
  vda  the 32 frames as one window, VideoDepthAnything.forward (1, 32, 3, H, W)
Models are loaded as the CPU drivers load them (benchmarks/{da2,rvm,vda}/torch_*.py: official
classes from --official, our safetensors with the official key names, strict).
"""
import argparse
import os
import statistics
import sys
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def load(args, torch):
    from safetensors.torch import load_file
    sys.path.insert(0, os.path.abspath(args.official))
    if args.model == "rvm":
        sys.path.insert(0, os.path.join(HERE, "..", "rvm"))
        from torch_rvm import load_model  # the CPU driver's loader (official MattingNetwork)
        return load_model(types.SimpleNamespace(official=args.official, weights=args.weights,
                                                variant="mobilenetv3", jit=False), torch)
    if args.model == "da2":
        from depth_anything_v2.dpt import DepthAnythingV2
        model = DepthAnythingV2(encoder="vits", features=64, out_channels=[48, 96, 192, 384])
    else:
        try:
            import easydict  # noqa: F401  (imported by the official motion module)
        except ImportError:  # not on the GPU image: attribute-access dict, all the code uses
            class EasyDict(dict):
                __getattr__ = dict.__getitem__
            sys.modules["easydict"] = types.SimpleNamespace(EasyDict=EasyDict)
        from video_depth_anything.video_depth import VideoDepthAnything
        model = VideoDepthAnything(encoder="vits", features=64, out_channels=[48, 96, 192, 384])
    sd = {k: v.float() for k, v in load_file(args.weights).items()}
    model.load_state_dict(sd, strict=True, assign=True)
    return model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True, choices=["da2", "rvm", "vda"])
    p.add_argument("--official", required=True, help="work tree of the official code")
    p.add_argument("--weights", required=True)
    p.add_argument("--ours", required=True,
                   help="bench_gpu --dump file (frames + our output); a {precision} in the "
                        "name is replaced per mode (falls back to the float32 file)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--modes", default="float32,float16,bfloat16,compile",
                   help="comma list of float32 | float16 | bfloat16 (autocast) | compile "
                        "(torch.compile + autocast bfloat16), run in this order")
    p.add_argument("--ratio", type=float, default=0.25)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    args = p.parse_args()
    modes = args.modes.split(",")
    for m in modes:
        if m not in ("float32", "float16", "bfloat16", "compile"):
            sys.exit(f"torch_gpu: unknown mode {m}")

    import torch
    from safetensors.numpy import load_file as load_np

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 = strict, like ours
    torch.backends.cudnn.allow_tf32 = False
    free0 = 0
    if cuda:
        torch.cuda.synchronize()
        free0, _ = torch.cuda.mem_get_info()
    model = load(args, torch).eval().to(dev)
    mean = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=dev).view(1, 3, 1, 1)
    for mode in modes:
        precision = "bfloat16" if mode == "compile" else mode
        path = args.ours.replace("{precision}", precision)
        if not os.path.exists(path):
            path = args.ours.replace("{precision}", "float32")
        ours = load_np(path)
        run_mode(args, torch, model, mode, precision, ours, dev, cuda, free0, mean, std)
        if cuda:
            torch.cuda.empty_cache()


def run_mode(args, torch, model, mode, precision, ours, dev, cuda, free0, mean, std):
    rgb = ours["rgb"]  # (F, H, W, 3) u8
    frames, h, w = rgb.shape[0], rgb.shape[1], rgb.shape[2]
    fwd = torch.compile(model) if mode == "compile" else model
    dt = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(precision)

    def step(x_u8, state):
        x = x_u8.to(dev).permute(0, 3, 1, 2).float() / 255.0
        with torch.autocast(dev.type, dtype=dt, enabled=dt is not None):
            if args.model == "rvm":
                res = fwd(x, *state, args.ratio)  # fgr, pha, r1..r4
                state[:] = res[2:]
                return torch.cat([res[1], res[0]], 1).float().cpu()  # (1, 4, H, W): pha, fgr
            x = (x - mean) / std
            if args.model == "vda":
                return fwd(x.unsqueeze(0)).float().cpu()[0]
            return fwd(x).float().cpu()

    x_host = torch.from_numpy(np.ascontiguousarray(rgb[:1] if args.model == "rvm" else rgb))
    times, rec, compile_s = [], [None] * 4, 0.0
    with torch.inference_mode():
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        for i in range(max(args.warmup, 1 if mode == "compile" else 0) + args.runs):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = step(x_host, rec)
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter() - t0
            if i == 0 and mode == "compile":
                compile_s = t
            if i >= max(args.warmup, 1 if mode == "compile" else 0):
                times.append(t)
        first = step(x_host, [None] * 4) if args.model == "rvm" else out
    n = frames if args.model != "rvm" else 1
    mem = peak = 0.0
    if cuda:
        free1, _ = torch.cuda.mem_get_info()
        mem = (free0 - free1) / 2**20
        peak = torch.cuda.max_memory_allocated() / 2**20
    impl = "torch_compile" if mode == "compile" else "torch_eager"
    print(f"RESULT gpu_{args.model} impl={impl} backend={dev.type} precision={precision} "
          f"size={w}x{h} batch={frames if args.model == 'da2' else 1} frames={n} "
          f"fps={n * len(times) / sum(times):.2f} ms_median={1e3 * statistics.median(times):.2f} "
          f"dev_mem_mb={mem:.0f} peak_alloc_mb={peak:.0f} compile_s={compile_s:.1f} "
          f"torch={torch.__version__}", flush=True)
    a = ours["out"].astype(np.float32).reshape(-1)
    if args.model == "rvm":  # pha then fgr, as torch's (1, 4, H, W)
        a = np.concatenate([a, ours["fgr"].astype(np.float32).reshape(-1)])
    b = first.numpy().astype(np.float32).reshape(-1)
    if a.size != b.size:
        sys.exit(f"torch_gpu: output has {b.size} values, ours {a.size}")
    d = np.abs(a - b)
    s = float(b.std()) or 1.0
    print(f"COMPARE gpu_{args.model} impl={impl} precision={precision} size={w}x{h} "
          f"max_abs_diff={d.max():.3e} max_abs_diff_over_std={d.max() / s:.3e} "
          f"mean_abs_diff_over_std={d.mean() / s:.3e} "
          f"nonfinite_torch={int((~np.isfinite(b)).sum())}", flush=True)


if __name__ == "__main__":
    main()
