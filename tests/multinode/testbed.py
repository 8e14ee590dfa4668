"""A multi-host test bed on one machine (tests/multinode, docs/operations.md "Multi-host tests").

Each "host" is a network namespace (its own loopback; two veths, into two bridges of the root
namespace: a control network for mpirun's daemons (Open MPI OOB) and a data network for the
ranks' MPI traffic (BTL tcp), as clusters often have; an address on each, in private /24s that
the bed picks unused on this machine) plus a
UTS namespace with its own hostname, held open by a `sleep` holder process. `mpirun` starts its
daemons there through an rsh agent (`nsenter` into the holder's namespaces), so every rank sees
its host's name (MPI_Get_processor_name, MPI_COMM_TYPE_SHARED) and talks TCP to the others.
Files are shared (one mount namespace), as on a cluster's shared filesystem.

Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN), ip, nsenter, unshare; Bed.require() exits 77 with a
loud SKIPPED line otherwise. Everything is removed on close(), at exit and on SIGTERM/SIGINT
(a failed test included); only the bed's own interfaces and addresses are touched."""
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def sh(*cmd, check=True):
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


class Bed:
    def __init__(self, n_hosts):
        self.tag = f"dm{os.getpid() % 100000}"
        self.n = n_hosts
        self.dir = tempfile.mkdtemp(prefix="dm_multinode_")
        self.holders = {}  # host name -> holder Popen
        self.links = []    # root-side interfaces we created
        self.netns = []
        self.nets = ("c", "d")  # control (OOB), data (BTL)
        self.subnet = {}
        for net in self.nets:
            self.subnet[net] = self._free_subnet(list(self.subnet.values()))
        self.hosts = [f"{self.tag}h{i + 1}" for i in range(n_hosts)]
        atexit.register(self.close)
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self._on_signal)
        self._up()

    @staticmethod
    def require():
        why = None
        if os.geteuid() != 0:
            why = "needs root (network and UTS namespaces)"
        for tool in ("ip", "nsenter", "unshare"):
            if not why and not shutil.which(tool):
                why = f"needs {tool}"
        if not why:
            probe = f"dmprobe{os.getpid() % 100000}"
            r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
            if r.returncode != 0:
                why = f"cannot create a network namespace: {r.stderr.strip()}"
            else:
                subprocess.run(["ip", "netns", "del", probe], capture_output=True)
        if why:
            print(f"SKIPPED: multinode test bed {why}")
            sys.exit(77)

    def _on_signal(self, sig, frame):
        self.close()
        sys.exit(128 + sig)

    @staticmethod
    def _free_subnet(taken):
        """A 10.23x.y.0/24 that no route or address of this machine overlaps."""
        used = sh("ip", "-4", "route", "show", "table", "all", check=False).stdout
        used += sh("ip", "-4", "addr", check=False).stdout
        for b in range(230, 250):
            for c in range(1, 255, 7):
                net = f"10.{b}.{c}"
                if f"{net}." not in used and f"10.{b}.0.0" not in used and net not in taken:
                    return net
        raise RuntimeError("no free private /24 for the test bed")

    def _up(self):
        for net in self.nets:
            br = f"{self.tag}{net}br"
            sh("ip", "link", "add", br, "type", "bridge")
            self.links.append(br)
            sh("ip", "addr", "add", f"{self.subnet[net]}.254/24", "dev", br)
            sh("ip", "link", "set", br, "up")
        for i, h in enumerate(self.hosts):
            ns = h
            sh("ip", "netns", "add", ns)
            self.netns.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            for k, net in enumerate(self.nets):
                veth = f"{self.tag}{net}v{i + 1}"
                sh("ip", "link", "add", veth, "type", "veth", "peer", "name", f"eth{k}",
                   "netns", ns)
                self.links.append(veth)
                sh("ip", "link", "set", veth, "master", f"{self.tag}{net}br")
                sh("ip", "link", "set", veth, "up")
                sh("ip", "-n", ns, "addr", "add", f"{self.subnet[net]}.{i + 1}/24", "dev",
                   f"eth{k}")
                sh("ip", "-n", ns, "link", "set", f"eth{k}", "up")
            # the holder: a UTS namespace with the host's name, inside the network namespace
            self.holders[h] = subprocess.Popen(
                ["ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c",
                 f"hostname {h} && exec sleep 100000"], start_new_session=True)
        # wait until each holder has set its hostname (its `sleep` runs in the new UTS ns)
        for h, p in self.holders.items():
            t = time.time()
            while self.uts(h) != h:
                if time.time() - t > 10 or p.poll() is not None:
                    raise RuntimeError(f"test bed: host {h} did not come up")
                time.sleep(0.05)
        agent = os.path.join(self.dir, "rsh_agent.sh")
        with open(agent, "w") as f:
            f.write("#!/bin/sh\n# rsh agent of the test bed: HOST CMD... -> CMD inside HOST's "
                    "namespaces\nh=$1; shift\npid=$(cat \"%s/$h.pid\") || exit 255\n"
                    "exec nsenter -t \"$pid\" -u -n -- /bin/sh -c \"$*\"\n" % self.dir)
        os.chmod(agent, 0o755)
        self.agent = agent
        for h in self.hosts:
            with open(os.path.join(self.dir, f"{h}.pid"), "w") as f:
                f.write(str(self.holder_pid(h)))

    def holder_pid(self, h):
        """PID of the `sleep` that holds host h's namespaces (the holder's exec'd shell)."""
        return self.holders[h].pid if self._is_sleep(self.holders[h].pid) else \
            self._child_sleep(self.holders[h].pid)

    @staticmethod
    def _is_sleep(pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip() == "sleep"
        except OSError:
            return False

    @staticmethod
    def _child_sleep(pid):
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        st = f.read().rsplit(")", 1)[1].split()
                    with open(f"/proc/{d}/comm") as f:
                        comm = f.read().strip()
                except OSError:
                    continue
                if int(st[1]) == pid and comm == "sleep":
                    return int(d)
        return pid

    def uts(self, h):
        p = self.holders[h].pid
        for pid in (p, self._child_sleep(p)):
            r = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"],
                               capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip() == h:
                return h
        return None

    def hostfile(self, slots):
        path = os.path.join(self.dir, f"hosts_{slots}")
        with open(path, "w") as f:
            for h in self.hosts:
                f.write(f"{h} slots={slots}\n")
        return path

    def mpirun_args(self, slots):
        """mpirun options: the bed's hosts, the agent, TCP only: daemons on the control
        network, ranks on the data network."""
        cnet, dnet = (f"{self.subnet[n]}.0/24" for n in self.nets)
        return ["--hostfile", self.hostfile(slots), "--mca", "plm_rsh_agent", self.agent,
                "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", dnet,
                "--mca", "oob_tcp_if_include", cnet, "--mca", "pml", "ob1",
                # mpirun notices a daemon behind a dead link only by TCP keepalive (default
                # 300 s + 9 x 20 s); docs/operations.md recommends short values on clusters
                "--mca", "oob_tcp_keepalive_time", "5", "--mca", "oob_tcp_keepalive_intvl", "2",
                "--mca", "oob_tcp_keepalive_probes", "3"]

    def link_down(self, h, net="d"):
        """Host h's link on the data ("d") or control ("c") network goes down."""
        sh("ip", "link", "set", f"{self.tag}{net}v{self.hosts.index(h) + 1}", "down")

    def pids_in(self, h, exe):
        """Processes running the program `exe` inside host h's network namespace (by
        /proc/PID/exe: depthmatte may re-execute itself, so its comm is not reliable)."""
        r = sh("ip", "netns", "pids", h, check=False)
        want, out = os.path.realpath(exe), []
        for pid in r.stdout.split():
            try:
                if os.path.realpath(f"/proc/{pid}/exe") == want:
                    out.append(int(pid))
            except OSError:
                pass
        return out

    def close(self):
        for h, p in list(self.holders.items()):
            # everything left in the host (daemons, ranks) goes with it
            r = subprocess.run(["ip", "netns", "pids", h], capture_output=True, text=True)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
        self.holders = {}
        for ns in self.netns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.netns = []
        for link in reversed(self.links):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        self.links = []
        shutil.rmtree(self.dir, ignore_errors=True)
