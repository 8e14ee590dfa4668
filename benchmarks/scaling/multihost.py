#!/usr/bin/env python3
"""Multi-host mode of benchmarks/scaling: run_scaling.sh on the namespace test bed
(tests/multinode/testbed.py), 1 -> 2 -> 3 hosts x 1 rank, TCP only (BTL over the bed's data
network), then per host: write-round time (the collective write incl. the watchdog check-in and
waiting for the others, per round), start-up (mpirun wall - the rank's total_s), and per round
the MPI bytes the pipeline itself exchanges (check-in 2 x 4 B per rank, the round descriptors'
Allgather 280 B x ranks per rank, the stop flag Allreduce 4 B per rank; the rows themselves go
through MPI-IO to the shared file, not counted here).

The hosts share this machine's cores: report overheads, not speed-up (RESULTS.md says so).
Needs root (namespaces). Usage:
  sudo benchmarks/scaling/multihost.py --exe build/depthmatte [--hosts "1 2 3"]
       [--strong-frames 48] [--weak-frames-per-rank 16] [--out-dir /tmp/dm_multihost]"""
import argparse
import os
import re
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tests", "multinode"))
import testbed  # noqa: E402

import h5py  # noqa: E402

ROUND_DESC_BYTES = 280  # sizeof(round_desc) in src/h5/h5out.c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--hosts", default="1 2 3")
    ap.add_argument("--strong-frames", type=int, default=48)
    ap.add_argument("--weak-frames-per-rank", type=int, default=16)
    ap.add_argument("--out-dir", default="/tmp/dm_multihost")
    a = ap.parse_args()
    testbed.Bed.require()
    rows = []
    for h in (int(x) for x in a.hosts.split()):
        bed = testbed.Bed(h)
        try:
            out = os.path.join(a.out_dir, f"h{h}")
            launcher = " ".join(["mpirun", "--oversubscribe", "--bind-to", "none"]
                                + bed.mpirun_args(1))
            subprocess.run([os.path.join(here, "run_scaling.sh"), "--exe", a.exe, "--np-list",
                            str(h), "--out-dir", out, "--launcher", launcher,
                            "--strong-frames", str(a.strong_frames), "--weak-frames-per-rank",
                            str(a.weak_frames_per_rank)], check=True)
            for line in open(os.path.join(out, "runs.txt")):
                mode, n, wall, h5 = line.split()
                n, wall = int(n), float(wall)
                log = open(os.path.join(out, f"{mode}_np{n}.log")).read()
                m = re.search(r"(\d+) write rounds", log)
                rounds = int(m.group(1)) if m else 0
                with h5py.File(h5) as f:
                    r = f["ranks"]
                    hosts = [x.decode() if isinstance(x, bytes) else x for x in r["host"][...]]
                    write, total = r["write_s"][...], r["total_s"][...]
                for k in range(n):
                    rows.append((mode, h, hosts[k], rounds, wall, write[k],
                                 write[k] / max(rounds, 1), wall - total[k],
                                 (2 * 4 + ROUND_DESC_BYTES * n + 4) if n > 1 else 0))
        finally:
            bed.close()
    print("| mode | hosts | host | rounds | wall_s | write_s | write_per_round_ms | "
          "startup_s | pipeline_MPI_bytes_per_round_per_rank |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.2f} | {r[5]:.2f} | "
              f"{1000 * r[6]:.1f} | {r[7]:.2f} | {r[8]} |")


if __name__ == "__main__":
    main()
