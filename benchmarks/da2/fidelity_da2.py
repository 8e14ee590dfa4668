#!/usr/bin/env python3
"""Float32 fidelity of our DA-V2 Small against a float64 evaluation of the official model.

For one real frame (default: shared/videos/bikes.mp4 frame 100, 640x272) and each --input-size
(default 518 -> 518x1218 and 266 -> 266x630), runs
  - the official DepthAnythingV2 (vits) in float64 (model.double(), input upcast), twice:
    "official64" exactly as the official code runs, whose interpolate_pos_encoding casts the
    position embedding to float32 (`self.pos_embed.float()`) in every dtype, so that this
    reference holds PyTorch's float32 bicubic resize of it; and "exact64" with that one cast
    made a no-op (the whole model in float64);
  - the official model in float32 (what the official code computes);
  - ours (fidelity_da2, float32 CPU backend) on the same float32 input tensor as the official run
    (--input-from: only the networks are compared), and once on our own preprocessing of the
    frame (its `input` must equal the official image2tensor's: PREPROCESS line; its `depth` at
    the source size is compared with infer_image's);
all with the recipe weights (golden/da2_vits/recipe.json, written by our generator), and prints
per reference and tap (tokens_embed, feat_2/5/8/11, depth_head, depth) the max abs error of ours
and of official float32 against it in units of the reference's std, and their ratio:

  FIDELITY da2 size=518x1218 ref=exact64 tap=depth_head std=... ours_max_over_std=...
           torch32_max_over_std=... ratio=... ours_mean_over_std=... torch32_mean_over_std=...

The official code (DepthAnything/Depth-Anything-V2) is read from --official and never part of
this repository (benchmarks/README.md). Needs python3 with torch, numpy, safetensors,
opencv-python-headless; the ffmpeg CLI (frame extraction, rgb24).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

TAPS = ["tokens_embed", "feat_2", "feat_5", "feat_8", "feat_11", "depth_head", "depth"]


def extract_frame(video, index, path):
    """Frame `index` (0-based, decode order) as (H, W, 3) uint8 RGB via the ffmpeg CLI."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", video],
        check=True, capture_output=True, text=True).stdout.strip().split(",")
    w, h = int(probe[0]), int(probe[1])
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", video, "-vf",
                    f"select=eq(n\\,{index})", "-vsync", "0", "-frames:v", "1",
                    "-pix_fmt", "rgb24", "-f", "rawvideo", path], check=True)
    rgb = np.fromfile(path, dtype=np.uint8)
    if rgb.size != h * w * 3:
        sys.exit(f"fidelity_da2: {video}: frame {index} not decoded ({rgb.size} bytes)")
    return rgb.reshape(h, w, 3)


def official_taps(model, x, src_hw):
    """Taps of the official model on input x (1, 3, h, w), in the model's dtype; `depth` is
    infer_image's final resize of forward(x) to the source size src_hw."""
    import torch
    import torch.nn.functional as F
    ph, pw = x.shape[-2] // 14, x.shape[-1] // 14
    with torch.inference_mode():
        out = {"tokens_embed": model.pretrained.prepare_tokens_with_masks(x)}
        feats = model.pretrained.get_intermediate_layers(
            x, model.intermediate_layer_idx[model.encoder], return_class_token=True)
        for k, f in zip([2, 5, 8, 11], feats):
            out[f"feat_{k}"] = f[0]
        # The head ends in ReLU: forward(x) == depth_head(...) before squeeze(1).
        out["depth_head"] = model.depth_head(feats, ph, pw)
        out["depth"] = F.interpolate(model(x)[:, None], src_hw, mode="bilinear",
                                     align_corners=True)[0, 0]
    return {k: v.double().numpy() for k, v in out.items()}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, "..", ".."))
    shared = os.environ.get("DM_SHARED", os.path.join(root, "..", "shared"))
    p = argparse.ArgumentParser()
    p.add_argument("--official", default="/tmp/official/da2")
    p.add_argument("--ours", default=os.path.join(root, "build-bench", "benchmarks",
                                                  "fidelity_da2"))
    p.add_argument("--weights", required=True, help="recipe weights (safetensors, ours wrote)")
    p.add_argument("--video", default=os.path.join(shared, "videos", "bikes.mp4"))
    p.add_argument("--frame", type=int, default=100)
    p.add_argument("--input-size", type=int, nargs="+", default=[518, 266])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"),
                                                  "dm_fidelity_da2"))
    p.add_argument("--json", help="also write the figures to this JSON file")
    args = p.parse_args()

    import cv2
    import torch
    from safetensors.numpy import load_file as load_np
    from safetensors.numpy import save_file as save_np
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.abspath(args.official))
    from depth_anything_v2.dpt import DepthAnythingV2  # official code, from --official

    os.makedirs(args.work, exist_ok=True)
    rgb = extract_frame(args.video, args.frame, os.path.join(args.work, "frame.rgb"))
    H, W = rgb.shape[:2]
    sd = {k: v.float() for k, v in load_file(args.weights).items()}
    m32 = DepthAnythingV2(encoder="vits", features=64, out_channels=[48, 96, 192, 384]).eval()
    m32.load_state_dict(sd, strict=True)
    m64 = DepthAnythingV2(encoder="vits", features=64, out_channels=[48, 96, 192, 384]).eval()
    m64.load_state_dict(sd, strict=True)
    m64 = m64.double()
    print(f"# fidelity_da2: {args.video} frame {args.frame} ({W}x{H}), torch {torch.__version__}"
          f", opencv {cv2.__version__}, threads {args.threads}")

    results = []
    for size in args.input_size:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        x32, _ = m32.image2tensor(bgr, size)  # official preprocessing, float32 (1, 3, h, w)
        x32 = x32.cpu().contiguous()
        tag = f"{x32.shape[2]}x{x32.shape[3]}"
        refs = {"official64": official_taps(m64, x32.double(), (H, W))}
        # The official interpolate_pos_encoding casts the position embedding to float32
        # (`self.pos_embed.float()`) whatever the model's dtype, so "official64" holds
        # PyTorch's own float32 bicubic resize of it, bit for bit what the float32 run computes
        # (and different between PyTorch releases). "exact64" makes that one cast a no-op on
        # the float64 model (an instance attribute shadowing Tensor.float), i.e. the whole
        # model in float64. At 518x518 (37x37 grid) the table is used unresized: both agree.
        pe = m64.pretrained.pos_embed
        pe.float = lambda: pe
        refs["exact64"] = official_taps(m64, x32.double(), (H, W))
        del pe.float
        t32 = official_taps(m32, x32, (H, W))
        given = os.path.join(args.work, f"input_{size}.safetensors")
        save_np({"input": x32.numpy()}, given)
        out = os.path.join(args.work, f"ours_{size}.safetensors")
        own = os.path.join(args.work, f"ours_own_{size}.safetensors")
        base = [args.ours, "--weights", args.weights, "--frame",
                os.path.join(args.work, "frame.rgb"), "--height", str(H), "--width", str(W),
                "--input-size", str(size), "--threads", str(args.threads)]
        subprocess.run(base + ["--out", own], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(base + ["--input-from", given, "--out", out], check=True,
                       stdout=subprocess.DEVNULL)
        ours = {k: v.astype(np.float64) for k, v in load_np(out).items()}
        own = {k: v.astype(np.float64) for k, v in load_np(own).items()}
        d_in = np.abs(own["input"] - x32.double().numpy()).max()
        print(f"PREPROCESS da2 size={tag} max_abs_ours_vs_official_input={d_in:.3e}")
        # `depth` (source size) only exists for our own preprocessing; it is the same network
        # input when PREPROCESS says 0.
        ours["depth"] = own["depth"]
        for refname, ref in refs.items():
            for name in TAPS:
                r = ref[name].reshape(-1)
                a = ours[name].reshape(-1)
                b = t32[name].reshape(-1)
                std = float(r.std())
                ea, eb = np.abs(a - r), np.abs(b - r)
                row = {"size": tag, "ref": refname, "tap": name, "std": std,
                       "ours_max_over_std": float(ea.max() / std),
                       "torch32_max_over_std": float(eb.max() / std),
                       "ours_mean_over_std": float(ea.mean() / std),
                       "torch32_mean_over_std": float(eb.mean() / std)}
                row["ratio"] = row["ours_max_over_std"] / row["torch32_max_over_std"]
                results.append(row)
                print(f"FIDELITY da2 size={tag} ref={refname} tap={name} std={std:.4g} "
                      f"ours_max_over_std={row['ours_max_over_std']:.3e} "
                      f"torch32_max_over_std={row['torch32_max_over_std']:.3e} "
                      f"ratio={row['ratio']:.2f} "
                      f"ours_mean_over_std={row['ours_mean_over_std']:.3e} "
                      f"torch32_mean_over_std={row['torch32_mean_over_std']:.3e}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
