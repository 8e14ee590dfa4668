#!/usr/bin/env python3
"""`dm_selftest` / `depthmatte selftest` as a user runs them (include/depthmatte/selftest.h).

- the CPU backend and the emulated backend (float32, float16) pass every op and network: exit 0,
  no FAIL row, every op of the case table and every network has a row;
- the emulated backend with one op deliberately perturbed (linear, conv2d) is caught: exit 1,
  the FAIL rows name that op, the networks using it fail, the other ops still pass;
- a NaN injected into an op's output is caught (NaN/Inf mismatch);
- --json gives the same verdicts as one JSON object;
- --backend cuda on a machine without a GPU (or a build without CUDA): exit 2 with one line on
  stderr, within seconds (no hang);
- bad options: exit 2 with the usage text; --help: exit 0.
Usage: selftest_cli_test.py DM_SELFTEST [DEPTHMATTE]"""
import json, re, shutil, subprocess, sys, time

exe = sys.argv[1]
cli = sys.argv[2] if len(sys.argv) > 2 else None
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    failures += 0 if cond else 1


def run(args, timeout=300, prog=None):
    t0 = time.monotonic()
    p = subprocess.run((prog or [exe]) + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


ROW = re.compile(r"^(\S+)\s.*\s(f32|f16|bf16)\s+\S+\s+\S+\s+\S+\s+\S+\s+(PASS|FAIL|UNSUPPORTED)\b")


def rows(out):
    """Table rows: (op or network, line, verdict)."""
    res = []
    for line in out.splitlines():
        m = ROW.match(line)
        if m:
            res.append((m.group(1), line, m.group(3)))
    return res


rc, out, err, _ = run(["--help"])
check(rc == 0 and "usage:" in out and "ops:" in out, "--help: exit 0 with usage")
ops = next(l for l in out.splitlines() if l.startswith("ops:")).split()[1:]
nets = next(l for l in out.splitlines() if l.startswith("networks:")).split()[1:]
check(len(ops) >= 18 and nets == ["rvm_mobilenetv3", "da2_vits", "vda_vits"],
      f"--help lists {len(ops)} ops and the networks {nets}")

# ---- all pass on the CPU backend (the reference against itself) --------------------------
rc, out, err, secs = run(["--backend", "cpu", "--threads", "1"])
r = rows(out)
print(out[-600:])
check(rc == 0, f"cpu: exit {rc} (want 0), {secs:.1f} s")
check(r and all(v == "PASS" for _, _, v in r), f"cpu: {len(r)} rows, all PASS")
check(set(ops) <= {n for n, _, _ in r}, "cpu: every op of the case table has a row")
check(set(nets) <= {n for n, _, _ in r}, "cpu: every network has a row")

# ---- bad options and the CUDA backend without a GPU --------------------------------------
for args, what in [(["--backend", "metal"], "unknown backend"),
                   (["--precision", "float8"], "unknown precision"),
                   (["-o", "linear,nonsense"], "unknown op in -o"),
                   (["--device", "x"], "bad --device"),
                   (["--models", "--ops-only"], "--models with --ops-only"),
                   (["--backend", "cpu", "--precision", "float16"], "cpu in float16"),
                   (["--perturb", "linear"], "--perturb without the emulated backend"),
                   (["--frobnicate"], "unknown option"),
                   (["-o"], "-o without a value")]:
    rc, out, err, _ = run(args, timeout=30)
    check(rc == 2 and err.strip() and not rows(out),
          f"{what}: exit {rc} (want 2), stderr: {err.splitlines()[0] if err else ''}")

gpu = shutil.which("nvidia-smi") and subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                                                    text=True).returncode == 0
if gpu:
    print("*** SKIPPED check: a GPU is visible, --backend cuda without a GPU not testable ***")
else:
    rc, out, err, secs = run(["--backend", "cuda"], timeout=60)
    lines = [l for l in err.splitlines() if l.strip()]
    check(rc == 2, f"cuda without a GPU: exit {rc} (want 2)")
    check(len(lines) == 1 and "cuda" in lines[0], f"cuda without a GPU: one line: {lines}")
    check(secs < 20, f"cuda without a GPU: {secs:.1f} s (< 20 s, no hang)")
    check("PASS" not in out and "FAIL" not in out, "cuda without a GPU: no table")

# ---- the emulated backend: all pass in float32 and float16; a perturbed op is caught -----
for prec in ("float32", "float16"):
    rc, out, err, secs = run(["--backend", "emulated", "--precision", prec, "--threads", "1"])
    r = rows(out)
    bad = [l for _, l, v in r if v != "PASS"]
    check(rc == 0 and r and not bad,
          f"emulated {prec}: exit {rc} (want 0), {len(r)} rows, {secs:.1f} s, not PASS: {bad}")
    if rc != 0:
        print(out[-3000:], err)

# which networks use which op (the models' code): a perturbed op must fail exactly these
users = {"linear": ({"da2_vits", "vda_vits"}, "float32"),
         "conv2d": ({"rvm_mobilenetv3", "da2_vits", "vda_vits"}, "float16")}
for op, (nets_using, prec) in users.items():
    rc, out, err, secs = run(["--backend", "emulated", "--precision", prec, "--perturb", op,
                              "--threads", "1"])
    r = rows(out)
    failed = {n for n, _, v in r if v == "FAIL"}
    check(rc == 1, f"perturb {op} ({prec}): exit {rc} (want 1), {secs:.1f} s")
    check(op in failed, f"perturb {op}: a FAIL row names {op}")
    check(any(l.startswith("FAILED: " + op) for l in out.splitlines()),
          f"perturb {op}: the summary lists FAILED: {op}")
    check(nets_using <= failed, f"perturb {op}: networks using it fail: {sorted(failed & set(nets))}")
    others = set(ops) - {op}
    check(not (failed & others), f"perturb {op}: other ops still pass (failed: {sorted(failed)})")
    if op == "linear":  # RVM has no linear layer: it must still pass
        check("rvm_mobilenetv3" not in failed, "perturb linear: rvm_mobilenetv3 still passes")

# a NaN written into an op's output where the reference has none: caught as a NaN/Inf mismatch
rc, out, err, _ = run(["--backend", "emulated", "--perturb", "attention:nan-always", "-o",
                       "attention", "--threads", "1"])
r = rows(out)
check(rc == 1 and r and all(v == "FAIL" and "NaN/Inf" in l for _, l, v in r),
      f"perturb attention:nan-always: exit {rc}, every attention row fails on NaN/Inf")

# --json: same verdict, machine-readable, with a filter
rc, out, err, _ = run(["--backend", "emulated", "--perturb", "linear", "-o", "linear,layernorm",
                       "--json", "--threads", "1"])
try:
    doc = json.loads(out)
    names = {row["name"] for row in doc["rows"]}
    check(rc == 1 and doc["failed"] > 0 and names == {"linear", "layernorm"} and
          all(row["result"] == ("FAIL" if row["name"] == "linear" else "PASS")
              for row in doc["rows"]), f"--json -o linear,layernorm: exit {rc}, {len(doc['rows'])} rows")
except (ValueError, KeyError) as e:
    check(False, f"--json output parses ({e}): {out[:200]}")

# ---- the CLI subcommand is the same command -----------------------------------------------
if cli:
    rc, out, err, _ = run(["selftest", "--help"], prog=[cli], timeout=30)
    check(rc == 0 and "usage: depthmatte selftest" in out, "depthmatte selftest --help")
    rc, out, err, _ = run(["selftest", "--backend", "cpu", "-o", "attention,da2_vits",
                           "--threads", "1"], prog=[cli])
    r = rows(out)
    check(rc == 0 and {n for n, _, _ in r} == {"attention", "da2_vits"} and
          all(v == "PASS" for _, _, v in r), f"depthmatte selftest -o attention,da2_vits: exit {rc}")
    rc, out, err, _ = run(["--help"], prog=[cli], timeout=30)
    check("selftest" in out, "depthmatte --help lists selftest")

print("FAILED" if failures else "all passed")
sys.exit(1 if failures else 0)
