#!/usr/bin/env python3
"""Summarise run_scaling.sh runs: reads RUNS (lines 'mode ranks wall_s file.h5'), each
output's /ranks table (docs/output.md), prints a table and writes a CSV.

overhead_wall = (wall - max inference_s) / wall: time not spent in the networks on the slowest
  rank (startup, model load, planning, decode not hidden, writes, waits, MPI).
overhead_stage = sum(decode_s + write_s + wait_s) / sum(total_s); decode_s overlaps inference
  (decode thread), so this is an upper bound on the in-run stage overhead.
eff_strong = T1 / (N * TN) (strong rows); eff_weak = T1 / TN (weak rows); T = wall time."""
import argparse, csv, sys
import h5py, numpy as np

STAGES = ("decode", "inference", "write", "wait", "total")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("--csv", default="scaling.csv")
    a = ap.parse_args()
    rows = []
    for line in open(a.runs):
        if not line.strip():
            continue
        mode, n, wall, h5 = line.split()
        n, wall = int(n), float(wall)
        with h5py.File(h5, "r") as f:
            r = f["ranks"]
            col = {s: np.asarray(r[s + "_s"], dtype=float) for s in STAGES}
            frames = int(np.sum(r["frames"]))
            complete = int(f.attrs.get("complete", -1))
        row = {"mode": mode, "ranks": n, "wall_s": wall, "frames": frames, "complete": complete}
        for s in STAGES:
            row[f"{s}_sum_s"] = float(col[s].sum())
            row[f"{s}_max_s"] = float(col[s].max())
        row["fps"] = frames / wall
        row["overhead_wall"] = (wall - row["inference_max_s"]) / wall
        tot = row["total_sum_s"]
        # decode runs on its own thread (overlapped), so it is not counted; the networks' thread
        # spends the rest of a rank's run in setup (probe, plan, model load, file creation),
        # writes (incl. waiting for the other ranks in the collective rounds) and decode waits.
        row["overhead_rank"] = float(np.max((col["total"] - col["inference"]) / col["total"]))
        row["overhead_loop"] = (row["write_sum_s"] + row["wait_sum_s"]) / tot if tot > 0 else float("nan")
        rows.append(row)
    for mode in ("strong", "weak"):
        base = [r for r in rows if r["mode"] == mode and r["ranks"] == 1]
        t1 = base[0]["wall_s"] if base else float("nan")
        for r in rows:
            if r["mode"] == mode:
                r["efficiency"] = t1 / (r["ranks"] * r["wall_s"]) if mode == "strong" else t1 / r["wall_s"]
    keys = list(rows[0].keys()) if rows else []
    with open(a.csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    hdr = ["mode", "ranks", "frames", "wall_s", "fps", "decode sum/max", "inference sum/max",
           "write sum/max", "wait sum/max", "ovh_wall", "ovh_rank", "ovh_loop", "efficiency"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for r in rows:
        cells = [r["mode"], str(r["ranks"]), str(r["frames"]), f"{r['wall_s']:.2f}", f"{r['fps']:.2f}"]
        cells += [f"{r[s + '_sum_s']:.2f}/{r[s + '_max_s']:.2f}" for s in ("decode", "inference", "write", "wait")]
        cells += [f"{r['overhead_wall']:.3f}", f"{r['overhead_rank']:.3f}", f"{r['overhead_loop']:.3f}",
                  f"{r['efficiency']:.3f}"]
        print("| " + " | ".join(cells) + " |")
    print(f"CSV: {a.csv}", file=sys.stderr)

if __name__ == "__main__":
    main()
