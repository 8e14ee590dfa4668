#!/usr/bin/env python3
"""Developer check for RVM ResNet50 beyond frame 0 (not run by CTest: needs torch and the
official code). Runs the official MattingNetwork('resnet50') (imported from --official, a work
tree of PeterL1n/RobustVideoMatting, never part of this repository) with the recipe weights
written by our recipe generator (--weights, e.g. from test_rvm_r50_golden with
DM_KEEP_RECIPE=1) on the frames of ../shared/golden/rvm_r50/{sequence,sequence_noDGF}, with
the producer loop of golden README section 4, and writes <out>/<case>.safetensors with fgr,
pha, r1..r4 (same keys as the goldens). test_rvm_r50_golden compares every frame and state
against these files when DM_RVM_R50_OFFICIAL_DIR=<out> is set.

Why: the shared goldens' frames >= 1 and r1..r4 are not reproduced by the official code with
the recipe weights (frame 0 and all its taps are, to 1e-7); see models/rvm_resnet50.md.
"""
import argparse
import os
import sys

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--official", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "../../../shared"))
    p.add_argument("--out", required=True)
    a = p.parse_args()
    import torch
    from safetensors.numpy import load_file, save_file
    sys.path.insert(0, os.path.abspath(a.official))
    from model.model import MattingNetwork  # official code

    m = MattingNetwork("resnet50").eval()
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in load_file(a.weights).items()}
    m.load_state_dict(sd, strict=True)
    os.makedirs(a.out, exist_ok=True)
    for case, ratio in (("sequence", 0.5), ("sequence_noDGF", 1.0)):
        g = load_file(os.path.join(a.shared, "golden/rvm_r50", case + ".safetensors"))
        src = torch.from_numpy(g["src_u8"]).permute(0, 3, 1, 2).float() / 255.0
        rec, fgrs, phas = [None] * 4, [], []
        with torch.no_grad():
            for t in range(src.shape[0]):
                fgr, pha, *rec = m(src[t:t + 1], *rec, ratio)
                fgrs.append(fgr[0].numpy())
                phas.append(pha[0].numpy())
        out = {"fgr": np.stack(fgrs), "pha": np.stack(phas)}
        out.update({f"r{i + 1}": r.numpy() for i, r in enumerate(rec)})
        for k in ("fgr", "pha", "r1", "r2", "r3", "r4"):
            print(f"{case} {k}: max |official - golden| = {np.abs(out[k] - g[k]).max():.3e}")
        save_file(out, os.path.join(a.out, case + ".safetensors"),
                  metadata={"torch": torch.__version__, "weights": a.weights})


if __name__ == "__main__":
    main()
