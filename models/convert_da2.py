#!/usr/bin/env python3
"""Convert the official Depth Anything V2 checkpoint (.pth) to safetensors for depthmatte.

Usage: python3 models/convert_da2.py depth_anything_v2_vits.pth da2_vits.safetensors [--fp16]

Keeps the official key names (pretrained.*, depth_head.*), which da2_model_load checks one by
one. Verifies the SHA-256 of the known official file (models/da2_vits.md) and the expected
tensor count/shapes of the ViT-S model before writing. Needs torch and safetensors (pip); not
run in CI. The .pth is loaded with weights_only=True where torch supports it (no pickled code).
"""
import argparse
import hashlib
import sys

KNOWN_SHA256 = {
    "715fade13be8f229f8a70cc02066f656f2423a59effd0579197bbf57860e1378": "depth_anything_v2_vits.pth",
}
EXPECTED = {  # a few shapes that identify the ViT-S / features-64 model
    "pretrained.pos_embed": (1, 1370, 384),
    "pretrained.blocks.11.attn.qkv.weight": (1152, 384),
    "depth_head.projects.0.weight": (48, 384, 1, 1),
    "depth_head.scratch.output_conv2.2.weight": (1, 32, 1, 1),
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pth")
    ap.add_argument("out")
    ap.add_argument("--fp16", action="store_true", help="store float16 (loader converts to f32)")
    ap.add_argument("--allow-unknown", action="store_true", help="accept a file whose SHA-256 is not listed")
    args = ap.parse_args()

    digest = sha256(args.pth)
    if digest not in KNOWN_SHA256 and not args.allow_unknown:
        sys.exit(f"{args.pth}: SHA-256 {digest} is not the official depth_anything_v2_vits.pth "
                 "(see models/da2_vits.md); use --allow-unknown to convert anyway")

    import torch
    from safetensors.torch import save_file

    try:
        sd = torch.load(args.pth, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        sd = torch.load(args.pth, map_location="cpu")
    if "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    for name, shape in EXPECTED.items():
        if name not in sd:
            sys.exit(f"{args.pth}: tensor {name} missing: not a DA-V2 ViT-S checkpoint")
        if tuple(sd[name].shape) != shape:
            sys.exit(f"{args.pth}: {name} has shape {tuple(sd[name].shape)}, expected {shape}")
    if len(sd) != 239:
        print(f"warning: {len(sd)} tensors, expected 239", file=sys.stderr)
    dtype = torch.float16 if args.fp16 else torch.float32
    out = {k: v.detach().to(dtype).contiguous() for k, v in sd.items()}
    save_file(out, args.out, metadata={"source": "depth_anything_v2_vits.pth", "sha256": digest,
                                        "converter": "depthmatte models/convert_da2.py"})
    print(f"wrote {len(out)} tensors to {args.out}")


if __name__ == "__main__":
    main()
