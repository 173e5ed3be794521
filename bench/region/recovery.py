#!/usr/bin/env python3
"""How fast a three-node DWCP region on loopback recovers, against a three-node etcd cluster (the
anchor) run with the same Raft timing, measured from outside in the same run.

  bench/region/recovery.py failover [ROUNDS] [DWCP_BINARY]
      SIGKILL the leader; time until a survivor reports itself leader, and until a write through
      it is acknowledged.
  bench/region/recovery.py stop|kill [ROUNDS] [DWCP_BINARY]
      SIGTERM the leader (stop: a graceful stop, as in a rolling upgrade) or SIGKILL it (kill)
      while one client writes through a follower in a loop; time from the signal until a write is
      acknowledged again, the longest gap between two acknowledged writes, and how many writes
      failed (the client retries a failed write after 2 ms).
  bench/region/recovery.py restart [ROUNDS] [DWCP_BINARY]
      SIGKILL a follower, write 20 times, wait 6 s (the others back off from reconnecting to it),
      start it again; time until its API answers and until it has applied the leader's commit
      index. For DWCP also how long `GET /v1/cluster` asked of it takes (etcd has no such call).

Each round starts a fresh DWCP region (--no-host-agent) and a fresh etcd cluster, one after the
other. etcd runs with DWCP's timing: a 30 ms heartbeat, a 300 ms election timeout (both randomize
it up to twice that) and pre-vote. A write is a PUT of a host's labels for DWCP and a put of one
key for etcd, sent over HTTP/JSON (etcd's gRPC gateway). DWCP_BINARY defaults to
.build/release/dwcp; etcd is /usr/bin/etcd (Debian's etcd-server) or ETCD_BINARY.
"""
import base64, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

MODE = sys.argv[1] if len(sys.argv) > 1 else "failover"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
DWCP = sys.argv[3] if len(sys.argv) > 3 else ".build/release/dwcp"
ETCD = os.environ.get("ETCD_BINARY") or shutil.which("etcd") or "/usr/bin/etcd"
if MODE not in ("failover", "stop", "kill", "restart"):
    sys.exit(__doc__)
for binary in (DWCP, ETCD):
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} is not an executable (build dwcp; apt-get install etcd-server)")

# A write through a follower waits for as long as the system makes it wait: etcd holds a proposal
# whose leader died until its request timeout (5 s plus two election timeouts).
WRITE_TIMEOUT = 10


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def call(method, url, body=None, timeout=5):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


class Cluster:
    """Three members on loopback; `start`, `command` and the calls below differ per system."""

    def __init__(self):
        self.data = tempfile.mkdtemp()
        ports = free_ports(6)
        self.client = {i: ports[i - 1] for i in (1, 2, 3)}
        self.peer = {i: ports[i + 2] for i in (1, 2, 3)}
        self.processes = {}
        for i in (1, 2, 3):
            self.start(i)

    def start(self, i):
        self.processes[i] = subprocess.Popen(
            self.command(i), stdout=subprocess.DEVNULL, stderr=open(f"{self.data}/{i}.err", "a"))

    def kill(self, i):
        self.processes[i].send_signal(signal.SIGKILL)
        self.processes[i].wait()

    def url(self, i, path):
        return f"http://127.0.0.1:{self.client[i]}{path}"

    def leader(self, among=(1, 2, 3), wait=15.0):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for i in among:
                try:
                    if self.leads(i):
                        return i
                except Exception:
                    pass
            time.sleep(0.005)
        sys.exit(f"{self.name}: no leader among {among} in {wait} s (logs in {self.data})")

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.data)


class DWCPRegion(Cluster):
    name = "dwcp"
    writes = 0

    def command(self, i):
        peers = sum([["--peer", f"n{j}@127.0.0.1:{self.peer[j]}"] for j in (1, 2, 3)], [])
        return [DWCP, "serve", "--data-dir", f"{self.data}/n{i}", "--node-id", f"n{i}", "--region", "eu",
                "--api", f"127.0.0.1:{self.client[i]}", "--listen", f"127.0.0.1:{self.peer[i]}", *peers,
                "--no-host-agent", "--log-level", "warning"]

    def leads(self, i):
        return call("GET", self.url(i, "/v1/cluster?timeout_ms=0"), timeout=1).get("role") == "leader"

    def prepare(self, i):
        call("POST", self.url(i, "/v1/hosts"), {"name": "h1", "region": "eu", "cpus": 16, "memory_bytes": 1 << 36})

    def write(self, i, k):
        # A fresh request id per write, as the CLI sends: a node may then send it to a new leader
        # itself when the old one went away without answering.
        self.writes += 1
        call("PUT", self.url(i, "/v1/hosts/h1/labels"), {"labels": {"k": str(k)}, "request_id": f"w{self.writes}"},
             timeout=WRITE_TIMEOUT)

    def commit_index(self, i):
        return call("GET", self.url(i, "/v1/status"))["commit_index"]

    def applied_index(self, i):
        return call("GET", self.url(i, "/v1/status"), timeout=1).get("applied_index", 0)

    def survey(self, i):
        """`GET /v1/cluster` asked of member i, every member answering; its duration."""
        asked = time.monotonic()
        answer = call("GET", self.url(i, "/v1/cluster?timeout_ms=5000"), timeout=10)
        took = time.monotonic() - asked
        if not all(member.get("reachable") for member in answer["members"]):
            print(f"  not every member answered: {answer}")
        return took


class EtcdCluster(Cluster):
    name = "etcd"

    def command(self, i):
        cluster = ",".join(f"e{j}=http://127.0.0.1:{self.peer[j]}" for j in (1, 2, 3))
        return [ETCD, "--name", f"e{i}", "--data-dir", f"{self.data}/e{i}",
                "--listen-client-urls", self.url(i, ""), "--advertise-client-urls", self.url(i, ""),
                "--listen-peer-urls", f"http://127.0.0.1:{self.peer[i]}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer[i]}",
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "dwcp-recovery", "--log-level", "warn",
                "--heartbeat-interval", "30", "--election-timeout", "300", "--pre-vote"]

    def status(self, i, timeout=1):
        return call("POST", self.url(i, "/v3/maintenance/status"), {}, timeout=timeout)

    def leads(self, i):
        status = self.status(i)
        return status.get("leader") == status["header"]["member_id"]

    def prepare(self, i):
        self.write(i, "initial")

    def write(self, i, k):
        key, value = (base64.b64encode(s.encode()).decode() for s in ("k", str(k)))
        call("POST", self.url(i, "/v3/kv/put"), {"key": key, "value": value}, timeout=WRITE_TIMEOUT)

    def commit_index(self, i):
        return int(self.status(i, timeout=5)["raftIndex"])

    def applied_index(self, i):
        return int(self.status(i).get("raftAppliedIndex", 0))

    survey = None


def failover(cluster):
    leader = cluster.leader()
    cluster.prepare(leader)
    time.sleep(1.5)
    survivors = [i for i in (1, 2, 3) if i != leader]
    started = time.monotonic()
    cluster.kill(leader)
    new = cluster.leader(among=survivors)
    elected = time.monotonic() - started
    while True:
        try:
            cluster.write(new, "after")
            break
        except Exception:
            time.sleep(0.005)
    return {"elected": elected, "written": time.monotonic() - started}


def stop(cluster, how=signal.SIGTERM):
    leader = cluster.leader()
    cluster.prepare(leader)
    follower = [i for i in (1, 2, 3) if i != leader][0]
    time.sleep(1.5)
    acknowledged = []
    signalled = None
    failed = 0
    k = 0
    while True:
        now = time.monotonic()
        if signalled is None and len(acknowledged) >= 50:
            signalled = now
            cluster.processes[leader].send_signal(how)
        try:
            cluster.write(follower, k)
            acknowledged.append(time.monotonic())
        except Exception:
            failed += 1
            time.sleep(0.002)
        k += 1
        if signalled is not None and acknowledged[-1] > signalled and time.monotonic() - signalled > 3:
            break
    cluster.processes[leader].wait()
    after = next(t for t in acknowledged if t > signalled)
    gaps = [b - a for a, b in zip(acknowledged, acknowledged[1:])]
    return {"first write after the signal": after - signalled, "longest gap": max(gaps), "failed writes": failed}


def restart(cluster):
    leader = cluster.leader()
    cluster.prepare(leader)
    away = leader % 3 + 1
    cluster.kill(away)
    for k in range(20):
        cluster.write(leader, k)
    time.sleep(6)
    commit = cluster.commit_index(leader)
    started = time.monotonic()
    cluster.start(away)
    up = None
    while time.monotonic() - started < 20:
        try:
            applied = cluster.applied_index(away)
            up = up or time.monotonic() - started
            if applied >= commit:
                break
        except Exception:
            pass
        time.sleep(0.01)
    result = {"api up": up, "caught up": time.monotonic() - started}
    if cluster.survey:
        result["survey"] = cluster.survey(away)
    return result


def show(key, value):
    return f"{key} {value}" if key == "failed writes" else f"{key} {value:.3f} s"


run = {"failover": failover, "stop": stop, "kill": lambda c: stop(c, signal.SIGKILL), "restart": restart}[MODE]
results = {"dwcp": [], "etcd": []}
for round_ in range(ROUNDS):
    for kind in (DWCPRegion, EtcdCluster):
        cluster = kind()
        try:
            result = run(cluster)
        finally:
            cluster.stop()
        results[kind.name].append(result)
        print(f"round {round_ + 1} {kind.name}: " + ", ".join(show(k, v) for k, v in result.items()), flush=True)
medians = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in results.items()}
for name, median in medians.items():
    print(f"median {name}: " + ", ".join(show(k, v) for k, v in median.items()))
for name, rs in results.items():
    if "failed writes" in rs[0]:
        print(f"failed writes, all rounds, {name}: {sum(r['failed writes'] for r in rs)}")
print("dwcp / etcd: " + ", ".join(
    f"{k} {medians['dwcp'][k] / medians['etcd'][k]:.3g}×" for k in medians["etcd"]
    if medians["etcd"][k] > 0 and k != "failed writes"))
