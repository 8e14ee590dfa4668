#!/usr/bin/env python3
"""Multi-host tests of `depthmatte run` on the test bed (testbed.py; CTest label multinode).

Usage: multinode.py CASE --exe DEPTHMATTE --mpiexec MPIEXEC --shared SHARED --work WORK
       [--recipe-tool TOOL]
Cases:
  bitwise   RVM whole videos + DA-V2 (recipe weights) and VDA (recipe weights): 2 hosts x 2
            ranks and 3 hosts x 1 rank, TCP only, bitwise equal to the 1-rank run; /ranks names
            each rank's host.
  linkdown  2 hosts x 1 rank; host 2's data-network link goes down mid-run (its daemon stays
            reachable): the stall watchdog ends the job (exit 4) within its limit + a bound,
            naming host 2; the file opens; --resume on host 1 alone completes it bitwise equal
            to an uninterrupted run.
  hostdown  the same with both links of host 2 down: mpirun's daemon keepalive (5 s + 3 x 2 s
            here) or the watchdog ends the job within the bound, naming host 2; resume as above.
  killhost  3 hosts x 1 rank; SIGKILL of every rank of host 3 mid-run: the job ends within the
            bound, the message names host 3, --resume on hosts 1-2 is bitwise equal.
Exit 0 pass, 1 fail, 77 skip (no privileges for namespaces, data or h5py missing; loud)."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import testbed  # noqa: E402

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIPPED: h5py/numpy not importable by {sys.executable}: {e}")
    sys.exit(77)

A = None
FAILS = []
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMP_NUM_THREADS="1")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def shared(rel):
    p = os.path.join(A.shared, rel)
    if not os.path.exists(p):
        print(f"SKIPPED: {p} missing (shared data folder {A.shared})")
        sys.exit(77)
    return p


def recipe_weights(model):
    if not A.recipe_tool or not os.path.exists(A.recipe_tool):
        print("SKIPPED: dm_make_recipe_weights not built")
        sys.exit(77)
    wts = os.path.join(A.work, f"{model}_recipe.safetensors")
    subprocess.run([A.recipe_tool, shared(f"golden/{model}/recipe.json"), wts], check=True)
    return wts


def write_job(name, job):
    path = os.path.join(A.work, name + ".yaml")
    with open(path, "w") as f:
        json.dump(job, f, indent=1)
    return path


def mpirun_cmd(np_, bed, slots, job, *extra, env_extra=None):
    base = [A.mpiexec, "--oversubscribe", "-np", str(np_)]
    if bed is not None:
        base += bed.mpirun_args(slots) + ["-x", "OMP_NUM_THREADS"]
        for k in env_extra or {}:
            base += ["-x", k]
    return base + [A.exe, "run", job, "--quiet", *extra]


def run(np_, bed, slots, job, *extra, timeout=400, env_extra=None):
    cmd = mpirun_cmd(np_, bed, slots, job, *extra, env_extra=env_extra)
    t = time.time()
    try:
        p = subprocess.run(cmd, env=dict(ENV, **(env_extra or {})), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        check(False, f"no hang: {job} {extra} finished within {timeout} s")
        return 124, "", ""
    where = "1 host" if bed is None else f"{len(bed.hosts)} hosts x {slots}"
    print(f"  [{time.time() - t:.1f} s, rc {p.returncode}] np {np_} on {where}: "
          f"{os.path.basename(job)} {' '.join(extra)}")
    return p.returncode, p.stdout, p.stderr


def datasets(path):
    out = {}
    with h5py.File(path) as f:
        for v in f["videos"]:
            for k in ("alpha", "foreground", "depth"):
                if k in f["videos"][v]:
                    out[f"{v}/{k}"] = f["videos"][v][k][...]
        hosts = [testbed_str(x) for x in f["ranks/host"][...]] if "ranks/host" in f else []
        if "ranks/local_rank" in f:
            out_ranks = (list(f["ranks/local_rank"][...]), list(f["ranks/gpu"][...]))
        else:
            out_ranks = ([], [])
    datasets.ranks = out_ranks
    return out, hosts


def testbed_str(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def whole_videos_job(name, frames, chunk=4, **runtime):
    """RVM + DA-V2 (recipe weights) on 4 small clips (whole videos: never split)."""
    clips = [shared("videos/lossless/juggle_256x144_ffv1.mkv"),
             shared("videos/lossless/dog_320x180_ffv1.mkv"),
             shared("videos/foreman_h264.mp4"), shared("videos/foreman_vp9.webm")]
    out = os.path.join(A.work, name + ".h5")
    job = {"inputs": clips, "max_frames": frames,
           "output": {"path": out, "chunk_frames": chunk},
           "matting": {"weights": shared("models/rvm_mobilenetv3.safetensors"),
                       "outputs": ["alpha", "foreground"]},
           "depth": {"weights": A.da2, "input_size": 70, "dtype": "float32"},
           "plan": {"split_videos": "never"}}
    if runtime:
        job["runtime"] = runtime
    return write_job(name, job), out


def case_bitwise():
    A.da2 = recipe_weights("da2_vits")
    vda = recipe_weights("vda_vits")
    job1, out1 = whole_videos_job("rvm_da2", 8)
    rc, _, err = run(1, None, 0, job1)
    check(rc == 0, f"1 rank: exit 0 ({err.strip()[-300:]})")
    ref, _ = datasets(out1)
    vclip = shared("videos/lossless/juggle_256x144_ffv1.mkv")

    def vda_job(name):
        out = os.path.join(A.work, name + ".h5")
        return write_job(name, {"inputs": [vclip], "max_frames": 54,
                                "output": {"path": out, "chunk_frames": 8},
                                "depth": {"model": "vda_vits", "weights": vda, "input_size": 42,
                                          "dtype": "float32"},
                                "plan": {"split_videos": "always"}}), out
    vjob1, vout1 = vda_job("vda_np1")
    rc, _, err = run(1, None, 0, vjob1)
    check(rc == 0, f"VDA 1 rank: exit 0 ({err.strip()[-300:]})")
    vref, _ = datasets(vout1)
    for n_hosts, slots in ((2, 2), (3, 1)):
        bed = testbed.Bed(n_hosts)
        try:
            np_ = n_hosts * slots
            want_hosts = [h for h in bed.hosts for _ in range(slots)]
            out = out1.replace(".h5", f"_{n_hosts}x{slots}.h5")
            # 2 simulated GPUs per host (test hook): rank i of a host takes GPU i
            sim = {"DM_TEST_CUDA_DEVICES": "2"}
            rc, so, err = run(np_, bed, slots, job1, "--set", f"output.path={out}",
                              env_extra=sim)
            check(rc == 0, f"RVM+DA-V2 {n_hosts} hosts x {slots}: exit 0 ({err.strip()[-300:]})")
            got, hosts = datasets(out)
            check(same(got, ref), f"RVM+DA-V2 {n_hosts} hosts x {slots}: alpha, foreground, "
                  "depth bitwise equal to 1 rank")
            check(hosts == want_hosts, f"/ranks host = the bed's hosts by rank ({hosts})")
            want_local = [i for _ in bed.hosts for i in range(slots)]
            lr, gpu = datasets.ranks
            check(lr == want_local and gpu == want_local,
                  f"/ranks local_rank {lr} and gpu {gpu} = {want_local}")
            lines = [x for x in so.splitlines() if x.startswith("rank ") and "local rank" in x]
            print("  " + "\n  ".join(lines))
            check(len(lines) == np_ and all(
                f"host {want_hosts[r]}, local rank {want_local[r]} of {slots}, GPU "
                f"{want_local[r]} (simulated" in lines[r] for r in range(np_)),
                "the summary shows each rank's host, local rank and GPU")
            if slots == 2:
                rc, _, err = run(np_, bed, slots, job1, "--set", f"output.path={out}.x",
                                 env_extra={"DM_TEST_CUDA_DEVICES": "1"})
                msg = [x for x in err.splitlines() if "DM_TEST_CUDA_DEVICES=1" in x]
                check(rc != 0 and bool(msg), f"1 simulated GPU for 2 ranks of a host: refused "
                      f"({msg[:1]})")
            vout = vout1.replace(".h5", f"_{n_hosts}x{slots}.h5")
            rc, _, err = run(np_, bed, slots, vjob1, "--set", f"output.path={vout}")
            check(rc == 0, f"VDA {n_hosts} hosts x {slots}: exit 0 ({err.strip()[-300:]})")
            vgot, _ = datasets(vout)
            check(same(vgot, vref), f"VDA {n_hosts} hosts x {slots}: depth bitwise equal to "
                  "1 rank (alignment state passed over TCP)")
        finally:
            bed.close()


# Watchdog limit in these cases: max(4 s, 3 x slowest round) (stall_timeout 4, stall_factor
# 3; first round 20 s, room for a sanitizer build), rounds of 4 frames ~2-7 s on 2 cores ->
# ~20 s (MEASURED linkdown: 20.6 s). Bound: limit + 60 s for a loaded machine.
STALL_BOUND_S = 90


def progress_started(p, timeout=300):
    """Waits for rank 0's first progress line (at least one round on disk)."""
    t = time.time()
    for line in p.stdout:
        if " frames (" in line:
            return True
        if time.time() - t > timeout:
            break
    return False


def interrupt_case(n_hosts, what):
    A.da2 = recipe_weights("da2_vits")
    job, out = whole_videos_job(what, 16, stall_timeout=4, stall_factor=3)
    ref_job = job
    ref_out = out.replace(".h5", "_ref.h5")
    rc, _, err = run(2, None, 0, ref_job, "--set", f"output.path={ref_out}")
    check(rc == 0, f"uninterrupted reference: exit 0 ({err.strip()[-300:]})")
    ref, _ = datasets(ref_out)
    bed = testbed.Bed(n_hosts)
    try:
        lost = bed.hosts[-1]
        cmd = [c for c in mpirun_cmd(n_hosts, bed, 1, job) if c != "--quiet"]
        errf = open(os.path.join(A.work, "stderr.txt"), "w")
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=errf, text=True)
        check(progress_started(p), "a progress line before the interruption")
        time.sleep(1.5)  # past the round's stop exchange: the interruption lands mid-compute
        t = time.time()
        if what == "linkdown":
            bed.link_down(lost, "d")
        elif what == "hostdown":
            bed.link_down(lost, "d")
            bed.link_down(lost, "c")
        else:
            pids = bed.pids_in(lost, A.exe)
            check(len(pids) == 1, f"one rank process on {lost}: {pids}")
            for q in pids:
                os.kill(q, signal.SIGKILL)
        try:
            rc = p.wait(timeout=STALL_BOUND_S + 60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = 124
        dt = time.time() - t
        p.stdout.read()
        errf.close()
        err = open(os.path.join(A.work, "stderr.txt")).read()
        lines = [x for x in err.splitlines() if lost in x]
        print(f"  {what}: job ended {dt:.1f} s after the interruption, rc {rc}; lines naming "
              f"{lost}: {lines[:3]}")
        check(rc != 0 and rc != 124 and dt <= STALL_BOUND_S,
              f"{what}: the job ends with an error within {STALL_BOUND_S} s ({dt:.1f} s, rc {rc})")
        if what == "linkdown":
            check(rc == 4, f"linkdown: exit status 4 (stall watchdog), got {rc}")
            # Two documented outcomes (docs/operations.md, "Stall watchdog"), by where the link
            # goes down relative to the round (a race this test does not control): between
            # rounds the check-in names the lost rank and host; inside the collective phase
            # (the write or the stop exchange) nobody can tell who is missing inside MPI-IO and
            # the phase thread says so, with the last completed round (seen in a CI-like run).
            named = any("stall:" in x and f"rank {n_hosts - 1} (host {lost})" in x for x in lines)
            in_write = any("stall:" in x and "lost during the write" in x
                           and "last completed round" in x for x in err.splitlines())
            print(f"  linkdown outcome: {'host named' if named else 'collective phase' if in_write else 'neither'}")
            check(named or in_write,
                  f"linkdown: the stall message names rank {n_hosts - 1} on host {lost} (or, "
                  "lost inside the collective phase, says so with the last completed round)")
        else:
            check(bool(lines), f"{what}: the error names host {lost}")
        try:
            with h5py.File(out) as f:
                done = f["videos/00000/done"][...]
                n_done = int(sum(f[f"videos/{v}/done"][...].sum() for v in f["videos"]))
            check(True, f"{what}: h5py opens the file ({n_done} rows done)")
            del done
        except Exception as e:  # noqa: BLE001 - any failure to open is the finding
            check(False, f"{what}: h5py opens the file ({e})")
        # --resume on the hosts that are left (host names stay, the lost one is not used)
        bed_left = bed.hosts[:-1]
        bed.hosts = bed_left
        rc, _, err = run(len(bed_left), bed, 1, job, "--resume")
        check(rc == 0, f"{what}: --resume on {bed_left}: exit 0 ({err.strip()[-300:]})")
        got, _ = datasets(out)
        with h5py.File(out) as f:
            check(int(f.attrs["complete"]) == 1, f"{what}: complete after --resume")
        check(same(got, ref), f"{what}: resumed file bitwise equal to the uninterrupted run")
    finally:
        bed.close()


CASES = {"bitwise": case_bitwise, "linkdown": lambda: interrupt_case(2, "linkdown"),
         "hostdown": lambda: interrupt_case(2, "hostdown"),
         "killhost": lambda: interrupt_case(3, "killhost")}


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--exe", required=True)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--recipe-tool", default="")
    A = ap.parse_args()
    A.shared = os.environ.get("DM_SHARED") or A.shared
    testbed.Bed.require()
    A.work = os.path.join(A.work, A.case)
    shutil.rmtree(A.work, ignore_errors=True)
    os.makedirs(A.work)
    CASES[A.case]()
    print("PASS" if not FAILS else f"FAIL ({len(FAILS)}): {FAILS}")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
