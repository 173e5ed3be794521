#!/usr/bin/env python3
"""How fast a three-node DWCP region on loopback recovers, measured from outside (no anchor: etcd's
times here would be set by its election timeout, not by its code).

  bench/region/recovery.py failover [ROUNDS] [DWCP_BINARY]
      SIGKILL the leader; time until a survivor reports itself leader, and until a write through
      it is acknowledged.
  bench/region/recovery.py stop|kill [ROUNDS] [DWCP_BINARY]
      SIGTERM the leader (stop: a graceful stop, as in a rolling upgrade) or SIGKILL it (kill)
      while one client writes through a follower in a loop; time from the signal until a write is
      acknowledged again, and the longest gap between two acknowledged writes.
  bench/region/recovery.py restart [ROUNDS] [DWCP_BINARY]
      SIGKILL a follower, write 20 intents, wait 6 s (the others back off from reconnecting to
      it), start it again; time until its API answers, until it has applied the leader's commit
      index, and how long `GET /v1/cluster` asked of it takes.

Each round starts a fresh region (--no-host-agent). DWCP_BINARY defaults to .build/release/dwcp.
"""
import json, shutil, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

MODE = sys.argv[1] if len(sys.argv) > 1 else "failover"
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
DWCP = sys.argv[3] if len(sys.argv) > 3 else ".build/release/dwcp"
if MODE not in ("failover", "stop", "kill", "restart"):
    sys.exit(__doc__)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def send(method, url, body):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


class Region:
    def __init__(self):
        self.data = tempfile.mkdtemp()
        ports = free_ports(6)
        self.api = {i: ports[i - 1] for i in (1, 2, 3)}
        self.replication = {i: ports[i + 2] for i in (1, 2, 3)}
        self.processes = {}
        for i in (1, 2, 3):
            self.start(i)

    def start(self, i):
        peers = sum([["--peer", f"n{j}@127.0.0.1:{self.replication[j]}"] for j in (1, 2, 3)], [])
        self.processes[i] = subprocess.Popen(
            [DWCP, "serve", "--data-dir", f"{self.data}/n{i}", "--node-id", f"n{i}", "--region", "eu",
             "--api", f"127.0.0.1:{self.api[i]}", "--listen", f"127.0.0.1:{self.replication[i]}", *peers,
             "--no-host-agent", "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=open(f"{self.data}/n{i}.err", "a"))

    def kill(self, i):
        self.processes[i].send_signal(signal.SIGKILL)
        self.processes[i].wait()

    def url(self, i, path):
        return f"http://127.0.0.1:{self.api[i]}{path}"

    def leader(self, among=(1, 2, 3), wait=15.0):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for i in among:
                try:
                    if get(self.url(i, "/v1/cluster?timeout_ms=0"), timeout=1).get("role") == "leader":
                        return i
                except Exception:
                    pass
            time.sleep(0.005)
        sys.exit(f"no leader among {among} in {wait} s (logs in {self.data})")

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()
        shutil.rmtree(self.data)


def failover(region):
    leader = region.leader()
    send("POST", region.url(leader, "/v1/hosts"), {"name": "h1", "region": "eu", "cpus": 16, "memory_bytes": 1 << 36})
    time.sleep(1.5)
    survivors = [i for i in (1, 2, 3) if i != leader]
    started = time.monotonic()
    region.kill(leader)
    new = region.leader(among=survivors)
    elected = time.monotonic() - started
    while True:
        try:
            send("PUT", region.url(new, "/v1/hosts/h1/labels"), {"labels": {"k": "v"}})
            break
        except Exception:
            time.sleep(0.005)
    return {"elected": elected, "written": time.monotonic() - started}


def stop(region, how=signal.SIGTERM):
    leader = region.leader()
    send("POST", region.url(leader, "/v1/hosts"), {"name": "h1", "region": "eu", "cpus": 16, "memory_bytes": 1 << 36})
    follower = [i for i in (1, 2, 3) if i != leader][0]
    time.sleep(1.5)
    acknowledged = []
    signalled = None
    k = 0
    while True:
        now = time.monotonic()
        if signalled is None and len(acknowledged) >= 50:
            signalled = now
            region.processes[leader].send_signal(how)
        try:
            send("PUT", region.url(follower, "/v1/hosts/h1/labels"), {"labels": {"k": str(k)}})
            acknowledged.append(time.monotonic())
        except Exception:
            time.sleep(0.002)
        k += 1
        if signalled is not None and acknowledged[-1] > signalled and time.monotonic() - signalled > 3:
            break
    region.processes[leader].wait()
    after = next(t for t in acknowledged if t > signalled)
    gaps = [b - a for a, b in zip(acknowledged, acknowledged[1:])]
    return {"first write after the signal": after - signalled, "longest gap": max(gaps)}


def restart(region):
    leader = region.leader()
    send("POST", region.url(leader, "/v1/hosts"), {"name": "h1", "region": "eu", "cpus": 16, "memory_bytes": 1 << 36})
    away = leader % 3 + 1
    region.kill(away)
    for k in range(20):
        send("PUT", region.url(leader, "/v1/hosts/h1/labels"), {"labels": {"k": str(k)}})
    time.sleep(6)
    commit = get(region.url(leader, "/v1/status"))["commit_index"]
    started = time.monotonic()
    region.start(away)
    up = None
    while time.monotonic() - started < 20:
        try:
            status = get(region.url(away, "/v1/status"), timeout=1)
            up = up or time.monotonic() - started
            if status.get("applied_index", 0) >= commit:
                break
        except Exception:
            pass
        time.sleep(0.01)
    caught_up = time.monotonic() - started
    asked = time.monotonic()
    survey = get(region.url(away, "/v1/cluster?timeout_ms=5000"), timeout=10)
    surveyed = time.monotonic() - asked
    if not all(member.get("reachable") for member in survey["members"]):
        print(f"  not every member answered: {survey}")
    return {"api up": up, "caught up": caught_up, "survey": surveyed}


results = []
for round_ in range(ROUNDS):
    region = Region()
    try:
        result = {
            "failover": failover, "stop": stop, "kill": lambda r: stop(r, signal.SIGKILL), "restart": restart
        }[MODE](region)
    finally:
        region.stop()
    results.append(result)
    print(f"round {round_ + 1}: " + ", ".join(f"{k} {v:.3f} s" for k, v in result.items()), flush=True)
print("median: " + ", ".join(f"{k} {statistics.median(r[k] for r in results):.3f} s" for k in results[0]))
