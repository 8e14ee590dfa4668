#!/usr/bin/env python3
"""Error of the OFFICIAL PyTorch code in reduced precision against the goldens (issue 10).

For every golden of ../shared/golden (golden README; RVM MobileNetV3 sequence / sequence_fgf /
sequence_noDGF, DA-V2 case_square / case_wide, VDA window / video / stream, RVM ResNet50 sequence
frame 0) the official model is run on the golden's own input, on CPU, in

  f32            the official code as is (float32): its distance to the golden is the
                 float32 noise between torch releases (the goldens were made with torch 1.13);
  half           model.half() / model.bfloat16() and the input cast to it: every tensor, every
                 op output stored in the reduced precision (what a device that keeps its
                 activations in f16/bf16 does; PyTorch's CPU kernels accumulate in float32);
  bfloat16       ditto in bfloat16;
  autocast_f16   torch.autocast('cpu', dtype=float16): convolutions, linear layers and matmuls in
                 float16, everything else (norms, softmax, elementwise ops on float32 inputs,
                 the residual stream) in float32 - how the official code runs on a GPU (VDA's
                 infer_video_depth(fp32=False) and the streaming infer_video_depth_one(
                 fp32=False) do exactly this);
  autocast_bf16  ditto in bfloat16;

and prints one line per (golden, output tensor, mode):

  LOWP official golden=rvm_mbv3/sequence tensor=pha[2] mode=half max_over_std=...
       mean_over_std=... rms_over_std=... finite=1

max / mean |x - golden| over std(golden); rms_over_std = rms(golden) / std(golden) converts to the
"u * rms" units of src/nn/tolerance.c. `--json OUT` writes the same figures.

VDA stream: video_depth_stream.VideoDepthAnything.infer_video_depth_one(frame, input_size=42,
device='cpu', fp32=<f32 and half modes>) on the video golden's first 40 frames in order, a fresh
model per mode (the stream's own transform and frame cache); half / bfloat16 cast the frame to
the model's dtype, so the cached temporal hidden states are stored in it too.
`--vda-cases window,video,stream` selects VDA goldens (--no-video: the window only).

Weights: RVM MobileNetV3 = ../shared/models/rvm_mobilenetv3.safetensors (F16 values upcast);
DA-V2 / VDA / RVM ResNet50 = the recipe weights written by our generator (`dm_make_recipe_weights`
of a build, --recipe-tool), with VDA's exact pe buffers.
The official code (Depth-Anything-V2, Video-Depth-Anything, RobustVideoMatting) is read from
--official (default /tmp/official/{da2,vda,rvm}) and never part of this repository
(benchmarks/README.md). Needs python3 with torch, numpy, safetensors, opencv-python-headless,
torchvision, einops, easydict, tqdm.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

MODES = ["f32", "half", "bfloat16", "autocast_f16", "autocast_bf16"]
RESULTS = []


def stats(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    d = np.abs(got - want)
    sd = float(want.std())
    rms = float(np.sqrt(np.mean(want * want)))
    fin = bool(np.isfinite(got).all())
    return {"max_over_std": float(d.max()) / sd, "mean_over_std": float(d.mean()) / sd,
            "rms_over_std": rms / sd, "std": sd, "finite": int(fin)}


def report(golden, tensor, mode, got, want):
    s = stats(got, want)
    s.update(golden=golden, tensor=tensor, mode=mode)
    RESULTS.append(s)
    print(f"LOWP official golden={golden} tensor={tensor} mode={mode} "
          f"max_over_std={s['max_over_std']:.3e} mean_over_std={s['mean_over_std']:.3e} "
          f"rms_over_std={s['rms_over_std']:.3f} finite={s['finite']}", flush=True)


class Mode:
    """Context of one precision mode: the model copy, the input cast and the autocast."""

    def __init__(self, torch, mode):
        self.torch, self.mode = torch, mode
        self.dtype = {"half": torch.float16, "bfloat16": torch.bfloat16}.get(mode, torch.float32)
        self.ac = {"autocast_f16": torch.float16, "autocast_bf16": torch.bfloat16}.get(mode)

    def model(self, m):
        import copy
        m = copy.deepcopy(m)
        return m.to(self.dtype) if self.dtype != self.torch.float32 else m

    def x(self, t):
        return t.to(self.dtype)

    def ctx(self):
        import contextlib
        if self.ac is None:
            return contextlib.nullcontext()
        return self.torch.autocast("cpu", dtype=self.ac)


def load_st(path):
    from safetensors.numpy import load_file
    return load_file(path)


def torch_sd(torch, path):
    return {k: torch.from_numpy(np.ascontiguousarray(v)).float() if v.dtype.kind == "f"
            else torch.from_numpy(np.ascontiguousarray(v)) for k, v in load_st(path).items()}


def run_rvm(torch, args, variant, weights, files, frames_only=None):
    sys.path.insert(0, os.path.abspath(args.official_rvm))
    from model.model import MattingNetwork  # official code, from --official-rvm
    sd = torch_sd(torch, weights)
    for rel, ratio, refiner in files:
        base = MattingNetwork(variant, refiner=refiner).eval()
        res = base.load_state_dict(sd, strict=False)
        missing = [k for k in res.missing_keys if not k.startswith("project_seg.")]
        unexpected = [k for k in res.unexpected_keys
                      if not (refiner != "deep_guided_filter" and k.startswith("refiner."))]
        if missing or unexpected:
            sys.exit(f"official_lowp: {weights}: missing {missing[:5]} unexpected "
                     f"{unexpected[:5]}")
        g = load_st(os.path.join(args.golden, rel))
        name = rel.replace(".safetensors", "")
        src_u8 = g["src_u8"]
        T = src_u8.shape[0] if frames_only is None else frames_only
        for mode in args.modes:
            m = Mode(torch, mode)
            model = m.model(base)
            rec = [None] * 4
            with torch.inference_mode(), m.ctx():
                for t in range(T):
                    src = torch.from_numpy(src_u8[t]).permute(2, 0, 1)[None].float() / 255.0
                    fgr, pha, *rec = model(m.x(src), *rec, downsample_ratio=ratio)
                    report(name, f"fgr[{t}]", mode, fgr.float().numpy()[0], g["fgr"][t])
                    report(name, f"pha[{t}]", mode, pha.float().numpy()[0], g["pha"][t])
            if frames_only is None:
                for i, r in enumerate(rec):
                    report(name, f"r{i + 1}", mode, r.float().numpy(), g[f"r{i + 1}"])


def run_da2(torch, args, weights):
    import torch.nn.functional as F
    sys.path.insert(0, os.path.abspath(args.official_da2))
    from depth_anything_v2.dpt import DepthAnythingV2  # official code, from --official-da2
    base = DepthAnythingV2(encoder="vits", features=64, out_channels=[48, 96, 192, 384]).eval()
    base.load_state_dict(torch_sd(torch, weights), strict=True)
    for case in ["case_square", "case_wide"]:
        g = load_st(os.path.join(args.golden, "da2_vits", case + ".safetensors"))
        x = torch.from_numpy(g["input"])
        src_hw = g["depth"].shape
        for mode in args.modes:
            m = Mode(torch, mode)
            model = m.model(base)
            with torch.inference_mode(), m.ctx():
                xx = m.x(x)
                feats = model.pretrained.get_intermediate_layers(
                    xx, model.intermediate_layer_idx["vits"], return_class_token=True)
                for k, f in zip([2, 5, 8, 11], feats):
                    report(f"da2_vits/{case}", f"feat_{k}", mode, f[0].float().numpy(),
                           g[f"feat_{k}"])
                d = model(xx)
                report(f"da2_vits/{case}", "depth_head", mode, d.float().numpy()[:, None],
                       g["depth_head"])
                # infer_image: bilinear resize to the source size in the model's dtype
                dep = F.interpolate(d[:, None], src_hw, mode="bilinear", align_corners=True)
                report(f"da2_vits/{case}", "depth", mode, dep.float().numpy()[0, 0], g["depth"])


def vda_model(torch, m, base):
    """The VDA model of mode m, with the official head's float32 tail as on a GPU: the official
    DPTHeadTemporal runs scratch.output_conv2 on out.float() inside
    torch.autocast(device_type="cuda", enabled=False), which on the CPU would leave the CPU
    autocast on; so here output_conv2 keeps float32 weights and runs with autocast off."""
    model = m.model(base)
    oc2 = model.head.scratch.output_conv2.float()
    fwd = oc2.forward

    def f32_tail(x, fwd=fwd):
        with torch.autocast("cpu", enabled=False):
            return fwd(x.float())

    oc2.forward = f32_tail
    return model


def run_vda(torch, args, weights):
    sys.path.insert(0, os.path.abspath(args.official_vda))
    from video_depth_anything.video_depth import VideoDepthAnything  # official code
    base = VideoDepthAnything(encoder="vits", features=64,
                              out_channels=[48, 96, 192, 384]).eval()
    base.load_state_dict(torch_sd(torch, weights), strict=True)
    g = load_st(os.path.join(args.golden, "vda_vits", "window.safetensors"))
    x = torch.from_numpy(g["input"])
    for mode in args.modes if "window" in args.vda_cases else []:
        m = Mode(torch, mode)
        model = vda_model(torch, m, base)
        taps = {}
        hooks = [mm.register_forward_hook(
            lambda mod, inp, out, i=i: taps.__setitem__(f"mm{i}_out", out[0].float().numpy()))
            for i, mm in enumerate(model.head.motion_modules)]  # returns (output, hidden states)
        with torch.inference_mode(), m.ctx():
            d = model(m.x(x))
        for h in hooks:
            h.remove()
        for i in range(4):
            report("vda_vits/window", f"mm{i}_out", mode, taps[f"mm{i}_out"], g[f"mm{i}_out"])
        report("vda_vits/window", "depth", mode, d.float().numpy(), g["depth"])
    gv = load_st(os.path.join(args.golden, "vda_vits", "video.safetensors"))
    frames = gv["frames_rgb_u8"]
    for mode in args.modes if "video" in args.vda_cases else []:
        m = Mode(torch, mode)
        model = vda_model(torch, m, base)
        if m.dtype != torch.float32:  # infer_video_depth feeds float32 windows
            fwd = model.forward
            model.forward = lambda t, fwd=fwd, dt=m.dtype: fwd(t.to(dt)).float()
        if m.ac is not None:
            # the official autocast path itself: infer_video_depth(fp32=False) wraps forward in
            # torch.autocast(device_type=device), here 'cpu' with the mode's dtype
            torch.set_autocast_dtype("cpu", m.ac)
        depths, _ = model.infer_video_depth(frames, 15.0, input_size=42, device="cpu",
                                            fp32=m.ac is None)
        torch.set_autocast_dtype("cpu", torch.bfloat16)  # PyTorch's CPU default
        report("vda_vits/video", "depths", mode, np.stack(depths), gv["depths"])
    if "stream" in args.vda_cases:
        run_vda_stream(torch, args, weights, frames)


def run_vda_stream(torch, args, weights, frames):
    """The streaming golden: video_depth_stream.VideoDepthAnything.infer_video_depth_one on the
    video golden's first frames, in order, on a fresh model per mode (its own transform; frame 0
    a single-frame pass, later frames against the cached temporal hidden states)."""
    from video_depth_anything.video_depth_stream import VideoDepthAnything as StreamVDA
    base = StreamVDA(encoder="vits", features=64, out_channels=[48, 96, 192, 384]).eval()
    base.load_state_dict(torch_sd(torch, weights), strict=True)
    gs = load_st(os.path.join(args.golden, "vda_vits", "stream.safetensors"))
    for mode in args.modes:
        m = Mode(torch, mode)
        model = vda_model(torch, m, base)  # a deep copy: fresh frame cache per mode
        if m.dtype != torch.float32:
            # the stream's transform gives a float32 frame; the cached hidden states and the
            # features stay in the model's dtype, the depth returns float32 (depth.to(input))
            fwd = model.forward_features
            model.forward_features = lambda t, fwd=fwd, dt=m.dtype: fwd(t.to(dt))
        if m.ac is not None:
            # the official autocast path: infer_video_depth_one(fp32=False) wraps the encoder
            # and the head in torch.autocast(device_type=device), here 'cpu' with the dtype
            torch.set_autocast_dtype("cpu", m.ac)
        depths = [model.infer_video_depth_one(frames[t], input_size=42, device="cpu",
                                              fp32=m.ac is None)
                  for t in range(gs["depths"].shape[0])]
        torch.set_autocast_dtype("cpu", torch.bfloat16)  # PyTorch's CPU default
        d, want = np.stack(depths), gs["depths"]
        # the parts tests/vda/test_vda_stream.c reports: the single-frame pass, frames before /
        # after the cache list starts sliding, all 40 (each over the std of its own golden part)
        for name, a, b in [("depths[0]", 0, 1), ("depths[1:11]", 1, 11),
                           ("depths[11:]", 11, len(d)), ("depths", 0, len(d))]:
            report("vda_vits/stream", name, mode, d[a:b], want[a:b])


def recipe_weights(args, recipe, out, pe=None):
    cmd = [args.recipe_tool, recipe, out] + ([pe] if pe else [])
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, "..", ".."))
    shared = os.environ.get("DM_SHARED", os.path.join(root, "..", "shared"))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--official-rvm", default="/tmp/official/rvm")
    p.add_argument("--official-da2", default="/tmp/official/da2")
    p.add_argument("--official-vda", default="/tmp/official/vda")
    p.add_argument("--golden", default=os.path.join(shared, "golden"))
    p.add_argument("--rvm-weights", default=os.path.join(shared, "models",
                                                         "rvm_mobilenetv3.safetensors"))
    p.add_argument("--recipe-tool", default=os.path.join(root, "build", "tests",
                                                         "dm_make_recipe_weights"))
    p.add_argument("--nets", default="rvm,da2,vda,rvm_r50")
    p.add_argument("--rvm-files", default="sequence,sequence_fgf,sequence_noDGF",
                   help="RVM MobileNetV3 goldens to run")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--vda-cases", default="window,video,stream",
                   help="VDA goldens to run (window, video, stream)")
    p.add_argument("--no-video", action="store_true", help="VDA: the window only")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json")
    args = p.parse_args()
    args.modes = args.modes.split(",")
    args.vda_cases = ["window"] if args.no_video else args.vda_cases.split(",")
    for c in args.vda_cases:
        if c not in ["window", "video", "stream"]:
            sys.exit(f"official_lowp: unknown VDA case {c} (one of window, video, stream)")
    for mo in args.modes:
        if mo not in MODES:
            sys.exit(f"official_lowp: unknown mode {mo} (one of {', '.join(MODES)})")
    import torch
    torch.set_num_threads(args.threads)
    print(f"official_lowp: torch {torch.__version__}, threads {args.threads}", flush=True)
    nets = args.nets.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        if "rvm" in nets:
            run_rvm(torch, args, "mobilenetv3", args.rvm_weights, [
                f for f in [("rvm_mbv3/sequence.safetensors", 0.5, "deep_guided_filter"),
                     ("rvm_mbv3/sequence_fgf.safetensors", 0.5, "fast_guided_filter"),
                     ("rvm_mbv3/sequence_noDGF.safetensors", 1.0, "deep_guided_filter")]
                if os.path.basename(f[0]).split(".")[0] in args.rvm_files.split(",")])
        if "da2" in nets:
            run_da2(torch, args, recipe_weights(
                args, os.path.join(args.golden, "da2_vits", "recipe.json"),
                os.path.join(tmp, "da2.safetensors")))
        if "vda" in nets:
            run_vda(torch, args, recipe_weights(
                args, os.path.join(args.golden, "vda_vits", "recipe.json"),
                os.path.join(tmp, "vda.safetensors"),
                os.path.join(args.golden, "vda_vits", "pe_buffers.safetensors")))
        if "rvm_r50" in nets:
            # frame 0 only: the goldens' later frames are not reproduced by the official code
            # itself (tests/rvm/test_rvm_r50_golden.c)
            run_rvm(torch, args, "resnet50", recipe_weights(
                args, os.path.join(args.golden, "rvm_r50", "recipe.json"),
                os.path.join(tmp, "r50.safetensors")),
                [("rvm_r50/sequence.safetensors", 0.5, "deep_guided_filter"),
                 ("rvm_r50/sequence_noDGF.safetensors", 1.0, "deep_guided_filter")],
                frames_only=1)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(RESULTS, f, indent=1)


if __name__ == "__main__":
    main()
