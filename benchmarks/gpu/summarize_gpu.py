#!/usr/bin/env python3
"""Table of a run_gpu_bench.sh log: one row per (model, size, batch, precision) with frames/s
and device memory of ours, PyTorch eager/autocast and torch.compile (bfloat16 rows), and the
speed ratios ours / eager and ours / compile (> 1: ours faster). COMPARE lines follow.
Memory, MiB: "peak" = the peak of what each allocated itself (ours: dm_cuda_alloc_stats; torch:
max_memory_allocated), "used" = the cudaMemGetInfo delta over the run (context, cuDNN/cuBLAS
workspaces and, for torch, its caching allocator's reserve included).

usage: summarize_gpu.py LOG
"""
import sys


def kv(line):
    return dict(t.split("=", 1) for t in line.split()[2:] if "=" in t)


def main():
    rows, compares = {}, []
    for line in open(sys.argv[1]):
        if line.startswith("RESULT gpu_"):
            d = kv(line)
            key = (line.split()[1], d["size"], d["batch"], d["precision"])
            rows.setdefault(key, {})[d["impl"]] = d
        elif line.startswith("COMPARE gpu_"):
            compares.append(line.strip())
    print(f"{'bench':9} {'size':9} {'b':>3} {'precision':9} {'ours fps':>9} {'torch fps':>9} "
          f"{'compile':>8} {'x eager':>7} {'x comp':>7} {'ours peak':>9} {'torch peak':>10} "
          f"{'ours used':>9} {'torch used':>10}")
    for (bench, size, batch, prec), r in rows.items():
        o, t, c = r.get("ours"), r.get("torch_eager"), r.get("torch_compile")
        f = lambda d, k="fps": float(d.get(k, "nan")) if d else float("nan")  # noqa: E731
        print(f"{bench:9} {size:9} {batch:>3} {prec:9} {f(o):9.2f} {f(t):9.2f} {f(c):8.2f} "
              f"{f(o) / f(t):7.2f} {f(o) / f(c):7.2f} {f(o, 'peak_alloc_mb'):9.0f} "
              f"{f(t, 'peak_alloc_mb'):10.0f} {f(o, 'dev_mem_mb'):9.0f} {f(t, 'dev_mem_mb'):10.0f}")
    for line in compares:
        print(line)


if __name__ == "__main__":
    main()
