#!/usr/bin/env python3
"""Converts an official Robust Video Matting checkpoint, rvm_mobilenetv3.pth or rvm_resnet50.pth
(https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0/rvm_mobilenetv3.pth,
.../rvm_resnet50.pth), into a safetensors file that depthmatte loads (include/depthmatte/rvm.h,
rvm_model_load_variant; matting.model rvm_mobilenetv3 / rvm_resnet50).

The key names stay the official ones (MattingNetwork(variant).state_dict(): backbone.* --
features.N for mobilenetv3, conv1/bn1/layer1..4 (torchvision resnet50 names) for resnet50 --
aspp.*, decoder.*, project_mat.*, project_seg.*, refiner.*). The variant is recognised from the
keys (--variant to insist on one).
BatchNorm layers are kept as separate tensors (weight, bias, running_mean, running_var,
num_batches_tracked); depthmatte folds them into the convolutions at load time.
Floating tensors are written as F32 (default) or F16 (--f16); num_batches_tracked as I64.

Usage:  python3 models/convert_rvm.py rvm_mobilenetv3.pth rvm_mobilenetv3.safetensors
        python3 models/convert_rvm.py rvm_resnet50.pth rvm_resnet50.safetensors
Needs:  torch (any version that can torch.load the checkpoint) and numpy. The safetensors
        package is used when installed; otherwise a minimal writer below produces the same
        format (8-byte little-endian header length, JSON header, raw little-endian data).
"""
import argparse
import hashlib
import json
import struct
import sys

import numpy as np

# Tensor groups the depthmatte loader expects (all required except project_seg.*, optional).
REQUIRED_PREFIXES = ("backbone.", "aspp.", "decoder.", "project_mat.", "refiner.")
OPTIONAL_PREFIXES = ("project_seg.",)
# tensors under REQUIRED_PREFIXES in MattingNetwork(variant).state_dict()
EXPECTED_REQUIRED = {"mobilenetv3": 378, "resnet50": 388}
# a key only that variant has
VARIANT_KEY = {"mobilenetv3": "backbone.features.0.0.weight", "resnet50": "backbone.conv1.weight"}

DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer; data ordered by key, each tensor aligned to 8 bytes."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        pad = (-len(raw)) % 8
        header[name] = {"dtype": DTYPES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pth", help="official rvm_mobilenetv3.pth")
    p.add_argument("out", help="output .safetensors")
    p.add_argument("--f16", action="store_true", help="store floating tensors as F16")
    p.add_argument("--drop-seg", action="store_true", help="omit project_seg.* (unused)")
    p.add_argument("--variant", choices=["auto", "mobilenetv3", "resnet50"], default="auto",
                   help="checkpoint variant (default: recognised from the keys)")
    args = p.parse_args()

    import torch  # only needed here; the rest of depthmatte never needs Python

    sd = torch.load(args.pth, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    found = [v for v, k in VARIANT_KEY.items() if k in sd]
    if len(found) != 1:
        sys.exit(f"convert_rvm: {args.pth}: not a MattingNetwork checkpoint (no "
                 f"{' or '.join(VARIANT_KEY.values())})")
    variant = found[0]
    if args.variant != "auto" and args.variant != variant:
        sys.exit(f"convert_rvm: {args.pth}: holds the {variant} variant, --variant {args.variant}")
    tensors, unknown = {}, []
    for name, t in sd.items():
        if name.startswith(OPTIONAL_PREFIXES):
            if args.drop_seg:
                continue
        elif not name.startswith(REQUIRED_PREFIXES):
            unknown.append(name)
            continue
        a = t.detach().cpu().numpy()
        if a.dtype.kind == "f":
            a = a.astype(np.float16 if args.f16 else np.float32)
        elif a.dtype != np.int64:
            sys.exit(f"convert_rvm: {name}: unexpected dtype {a.dtype}")
        tensors[name] = a
    if unknown:
        sys.exit(f"convert_rvm: {args.pth}: not a MattingNetwork('{variant}') checkpoint "
                 f"(unexpected keys, e.g. {unknown[:3]})")
    n_req = sum(1 for k in tensors if k.startswith(REQUIRED_PREFIXES))
    if n_req != EXPECTED_REQUIRED[variant]:
        sys.exit(f"convert_rvm: {args.pth}: {n_req} tensors, expected "
                 f"{EXPECTED_REQUIRED[variant]} for {variant} (a different checkpoint?)")
    metadata = {
        "model": f"RobustVideoMatting MattingNetwork('{variant}') state_dict (official key names)",
        "source": args.pth,
        "source_sha256": sha256(args.pth),
        "license": "GPL-3.0 (RobustVideoMatting)",
        "converter": "depthmatte models/convert_rvm.py",
    }
    try:
        from safetensors.numpy import save_file
        save_file(tensors, args.out, metadata=metadata)
    except ImportError:
        write_safetensors(args.out, tensors, metadata)
    print(f"wrote {args.out}: {variant}, {len(tensors)} tensors, source sha256 {metadata['source_sha256']}")


if __name__ == "__main__":
    main()
