#!/usr/bin/env python3
"""Convert an official Video Depth Anything Small checkpoint (.pth) to safetensors.

Input: video_depth_anything_vits.pth or metric_video_depth_anything_vits.pth (see
models/vda_vits.md). Keeps the official key names (pretrained.*, head.*,
head.motion_modules.N.*, including the pos_encoder.pe buffers), which vda_model_load checks one
by one. Usage: convert_vda.py IN.pth OUT.safetensors [--fp16]
Load the result with vda_model_load(..., metric=1) for the metric checkpoint.
"""
import argparse
import sys

import torch
from safetensors.torch import save_file

EXPECTED = {  # shapes that identify the ViT-S / features-64 temporal model
    "pretrained.cls_token": (1, 1, 384),
    "head.projects.0.weight": (48, 384, 1, 1),
    "head.motion_modules.0.temporal_transformer.proj_in.weight": (192, 192),
    "head.motion_modules.1.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe": (1, 32, 384),
    "head.motion_modules.3.temporal_transformer.transformer_blocks.0.ff.net.0.proj.weight": (512, 64),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pth")
    ap.add_argument("out")
    ap.add_argument("--fp16", action="store_true", help="store F16 (the loader converts to F32)")
    args = ap.parse_args()
    sd = torch.load(args.pth, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    for name, shape in EXPECTED.items():
        if name not in sd:
            sys.exit(f"{args.pth}: tensor {name} missing: not a Video Depth Anything ViT-S checkpoint")
        if tuple(sd[name].shape) != shape:
            sys.exit(f"{args.pth}: {name} has shape {tuple(sd[name].shape)}, expected {shape}")
    dtype = torch.float16 if args.fp16 else torch.float32
    # the sinusoidal pe buffers stay float32 (exact torch values)
    out = {k: (v if k.endswith(".pe") else v.to(dtype)).detach().contiguous() for k, v in sd.items()}
    save_file(out, args.out, metadata={"source": args.pth})
    print(f"{args.out}: {len(out)} tensors")


if __name__ == "__main__":
    main()
