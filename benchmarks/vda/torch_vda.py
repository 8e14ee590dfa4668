#!/usr/bin/env python3
"""Times the official Video Depth Anything Small on CPU (float32), beside bench_vda_cpu.

Same two parts as bench_vda_cpu, in one process, in the same order:
  window: frames 0..31 of --frames through the official per-window steps of infer_video_depth
          (its transform: /255 in float32, Resize lower_bound multiple of 14 INTER_CUBIC,
          NormalizeImage, PrepareForNet; forward; bilinear align_corners=True resize to the
          source size), under torch.no_grad as the official code;
  video:  VideoDepthAnything.infer_video_depth(frames, 15, input_size, device='cpu', fp32=True)
          on all K frames of the file (windows, alignment, blending).
Prints, like bench_vda_cpu (fps = frames / seconds; maxrss_mb = getrusage ru_maxrss so far,
which includes the Python/torch runtime; rss_after_load_mb = after import and weights):

    RESULT vda impl=torch_eager mode=window size=HxW src=HxW frames=32 threads=T fps=... s=...
    RESULT vda impl=torch_eager mode=video  size=HxW src=HxW frames=K threads=T fps=... s=...

Model: VideoDepthAnything(encoder='vits', features=64, out_channels=[48,96,192,384]) imported
from --official (a work tree of DepthAnything/Video-Depth-Anything, never part of this
repository); weights from the safetensors file written by our recipe generator (official key
names incl. the pos_encoder.pe buffers), loaded strictly with assign=True so that no second
copy of the weights inflates the RSS. --compare PREFIX reads bench_vda_cpu's dump
(PREFIX.window.f32, PREFIX.video.f32) and prints max |ours - torch| (apples to apples).
"""
import argparse
import os
import resource
import statistics
import sys
import time

import numpy as np

# infer_video_depth wraps its window loop in tqdm; keep the log clean (tqdm >= 4.66 reads this).
os.environ.setdefault("TQDM_DISABLE", "1")


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def official_input_size(h, w, input_size):
    # The aspect rule at the top of infer_video_depth, so that the window part runs at the
    # size the video part uses.
    ratio = max(h, w) / min(h, w)
    if ratio > 1.78:
        input_size = int(input_size * 1.777 / ratio)
        input_size = round(input_size / 14) * 14
    return input_size


def compare(mode, prefix, torch_depth, shape):
    path = f"{prefix}.{mode}.f32"
    if not os.path.exists(path):
        print(f"# torch_vda: no {path}, no comparison for {mode}")
        return
    ours = np.fromfile(path, dtype="<f4")
    if ours.size != int(np.prod(shape)):
        sys.exit(f"torch_vda: {path} has {ours.size} floats, expected {shape}")
    a = ours.reshape(shape).astype(np.float64)
    b = np.asarray(torch_depth, dtype=np.float64).reshape(shape)
    d = np.abs(a - b)
    std = float(b.std())
    print(f"COMPARE vda mode={mode} frames={shape[0]} max_abs_diff={d.max():.3e} "
          f"max_abs_diff_over_std={d.max() / std:.3e} mean_abs_diff={d.mean():.3e} "
          f"depth_std={std:.4f} finite={int(np.isfinite(b).all())}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--official", required=True, help="Video-Depth-Anything work tree")
    p.add_argument("--weights", required=True, help="recipe weights (safetensors)")
    p.add_argument("--frames", required=True, help="raw rgb24 frames (K, H, W, 3)")
    p.add_argument("--width", type=int, default=720)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--input-size", type=int, default=518)
    p.add_argument("--window-runs", type=int, default=1)
    p.add_argument("--no-video", action="store_true")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--compare", help="PREFIX of bench_vda_cpu --dump")
    args = p.parse_args()

    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.abspath(args.official))
    import cv2
    from torchvision.transforms import Compose
    from video_depth_anything.util.transform import NormalizeImage, PrepareForNet, Resize
    from video_depth_anything.video_depth import INFER_LEN, VideoDepthAnything  # official code

    model = VideoDepthAnything(encoder="vits", features=64,
                               out_channels=[48, 96, 192, 384]).eval()
    sd = {k: v.float() for k, v in load_file(args.weights).items()}
    model.load_state_dict(sd, strict=True, assign=True)
    del sd
    rss_load = rss_mb()

    h, w = args.height, args.width
    raw = np.fromfile(args.frames, dtype=np.uint8)
    if raw.size == 0 or raw.size % (h * w * 3):
        sys.exit(f"torch_vda: {args.frames}: {raw.size} bytes is not a multiple of {h}x{w}x3")
    frames = raw.reshape(-1, h, w, 3)
    k = frames.shape[0]

    size = official_input_size(h, w, args.input_size)
    transform = Compose([
        Resize(width=size, height=size, resize_target=False, keep_aspect_ratio=True,
               ensure_multiple_of=14, resize_method="lower_bound",
               image_interpolation_method=cv2.INTER_CUBIC),
        NormalizeImage(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        PrepareForNet(),
    ])
    probe = transform({"image": frames[0].astype(np.float32) / 255.0})["image"]
    ih, iw = probe.shape[1:]
    common = f"size={ih}x{iw} src={h}x{w}"

    win_depth = None
    if args.window_runs > 0:
        idx = [min(i, k - 1) for i in range(INFER_LEN)]  # first window, official padding
        times = []
        for _ in range(args.window_runs):
            t0 = time.perf_counter()
            cur = torch.cat([torch.from_numpy(
                transform({"image": frames[i].astype(np.float32) / 255.0})["image"])
                .unsqueeze(0).unsqueeze(0) for i in idx], dim=1)
            with torch.no_grad():
                depth = model.forward(cur)  # (1, 32, ih, iw)
                depth = F.interpolate(depth.flatten(0, 1).unsqueeze(1), size=(h, w),
                                      mode="bilinear", align_corners=True)
            times.append(time.perf_counter() - t0)
        win_depth = depth.squeeze(1).numpy()
        s = statistics.median(times)
        print(f"RESULT vda impl=torch_eager mode=window {common} frames={INFER_LEN} "
              f"threads={args.threads} fps={INFER_LEN / s:.4f} s={s:.2f} maxrss_mb={rss_mb():.0f} "
              f"rss_after_load_mb={rss_load:.0f} torch={torch.__version__}", flush=True)

    vid_depth = None
    if not args.no_video:
        t0 = time.perf_counter()
        vid_depth, _ = model.infer_video_depth(frames, 15.0, input_size=args.input_size,
                                               device="cpu", fp32=True)
        s = time.perf_counter() - t0
        print(f"RESULT vda impl=torch_eager mode=video {common} frames={k} "
              f"threads={args.threads} fps={k / s:.4f} s={s:.2f} maxrss_mb={rss_mb():.0f} "
              f"rss_after_load_mb={rss_load:.0f} torch={torch.__version__}", flush=True)

    if args.compare:
        if win_depth is not None:
            compare("window", args.compare, win_depth, (INFER_LEN, h, w))
        if vid_depth is not None:
            compare("video", args.compare, vid_depth, (k, h, w))


if __name__ == "__main__":
    main()
