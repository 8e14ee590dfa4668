#!/usr/bin/env python3
"""Summarises the RESULT / COMPARE lines of a benchmark driver log (see run_*_cpu.sh).

usage: summarize.py LOG BENCH METRIC {higher|lower} [GROUP_KEY]
Groups RESULT lines of benchmark BENCH by impl (and GROUP_KEY, e.g. size), takes the median of
METRIC over the repeats, and prints each implementation beside torch_eager (and torch_jit if
present) with the ratio "ours vs torch" expressed as a speed ratio (> 1: ours faster), and beside
ours_ref (an earlier build of ours in the same run: run_vda_cpu.sh --ref-bin, run_da2_cpu.sh
--baseline) when present.
Also prints the median of every other numeric key (e.g. maxrss_mb) and all COMPARE lines.
"""
import statistics
import sys
from collections import OrderedDict


def parse(line):
    kv = {}
    for tok in line.split()[2:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            kv[k] = v
    return kv


def main():
    log, bench, metric, sense = sys.argv[1:5]
    group_key = sys.argv[5] if len(sys.argv) > 5 else None
    runs = OrderedDict()
    compares = []
    for line in open(log):
        parts = line.split()
        if len(parts) < 2 or parts[1] != bench:
            continue
        if parts[0] == "RESULT":
            kv = parse(line)
            key = (kv.get(group_key, "") if group_key else "", kv["impl"])
            runs.setdefault(key, []).append(kv)
        elif parts[0] == "COMPARE":
            compares.append(line.strip())

    def med(rows, k):
        vals = [float(r[k]) for r in rows if k in r]
        return statistics.median(vals) if vals else float("nan")

    groups = OrderedDict()
    for (g, impl), rows in runs.items():
        groups.setdefault(g, {})[impl] = rows
    for g, impls in groups.items():
        title = f"{bench} {group_key}={g}" if group_key else bench
        print(f"== {title}: median of {metric} over repeats ({sense} is better)")
        for impl, rows in impls.items():
            extra = " ".join(f"{k}={med(rows, k):.0f}" for k in ("maxrss_mb", "rss_after_load_mb")
                             if k in rows[0])
            print(f"   {impl:12s} {metric}={med(rows, metric):10.3f}  repeats={len(rows)} "
                  f"all=[{', '.join(r[metric] for r in rows)}] {extra}")
        if "ours" in impls:
            o = med(impls["ours"], metric)
            # an earlier build of ours in the same run (run_vda_cpu.sh --ref-bin,
            # run_da2_cpu.sh --baseline)
            if "ours_ref" in impls:
                b = med(impls["ours_ref"], metric)
                speed = o / b if sense == "higher" else b / o
                print(f"   speed ratio ours/ours_ref = {speed:.3f}x  (before/after, same run)")
            for ref in ("torch_eager", "torch_jit"):
                if ref in impls:
                    t = med(impls[ref], metric)
                    speed = o / t if sense == "higher" else t / o
                    print(f"   speed ratio ours/{ref} = {speed:.3f}x  (target >= 0.8x)")
                    if "maxrss_mb" in impls["ours"][0] and "maxrss_mb" in impls[ref][0]:
                        ro, rt = med(impls["ours"], "maxrss_mb"), med(impls[ref], "maxrss_mb")
                        print(f"   peak RSS ours {ro:.0f} MiB vs {ref} {rt:.0f} MiB "
                              f"({'<=' if ro <= rt else '>'} torch)")
    for c in compares:
        print("   " + c)


if __name__ == "__main__":
    main()
