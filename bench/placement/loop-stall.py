#!/usr/bin/env python3
# How long creating VMs holds up a dwcp dev node's event loop: a client probes GET /v1/status
# every millisecond while another creates VMs. Scenarios: "fleet" (10,000 hosts, 20 single
# `vm create`s) and "batch" (10 hosts, 3 x `vm create --count 1000`). Needs port 7900 free.
#
#   python3 bench/placement/loop-stall.py .build/release/dwcp fleet
import http.client, json, os, shutil, subprocess, sys, tempfile, threading, time
binary, scenario = sys.argv[1], sys.argv[2]
d = tempfile.mkdtemp(prefix='dwcp-stall-')
node = subprocess.Popen([binary, 'dev', '--data-dir', d, '--api', '127.0.0.1:7900', '--no-host-agent'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = time.time() + 30
while True:  # until the node answers
    try:
        probe_connection = http.client.HTTPConnection('127.0.0.1', 7900, timeout=1)
        probe_connection.request('GET', '/v1/status'); probe_connection.getresponse().read(); break
    except OSError:
        if time.time() > deadline or node.poll() is not None: sys.exit('the node did not start')
        time.sleep(0.1)
c = http.client.HTTPConnection('127.0.0.1', 7900)
def post(path, body):
    c.request('POST', path, body=json.dumps(body), headers={'Content-Type': 'application/json'})
    r = c.getresponse(); data = r.read(); return r.status, data
hosts = 10 if scenario == 'batch' else 10000
for i in range(hosts):
    s, _ = post('/v1/hosts', {"name": "h%05d" % i, "region": "local", "cpus": 1024, "memory_bytes": 4096 << 30})
    assert s == 200, s
stop = False; lat = []
def probe():
    pc = http.client.HTTPConnection('127.0.0.1', 7900)
    while not stop:
        t = time.perf_counter(); pc.request('GET', '/v1/status'); pc.getresponse().read(); lat.append(time.perf_counter() - t)
        time.sleep(0.001)
th = threading.Thread(target=probe); th.start(); time.sleep(0.3)
times = []
if scenario == 'batch':
    for b in range(3):
        t = time.perf_counter(); s, _ = post('/v1/vms', {"name": "b%d" % b, "region": "local", "cpus": 1, "memory_bytes": 4 << 20, "count": 1000}); times.append(time.perf_counter() - t); assert s == 200, s
else:
    for v in range(20):
        t = time.perf_counter(); s, _ = post('/v1/vms', {"name": "v%d" % v, "region": "local", "cpus": 1, "memory_bytes": 4 << 20}); times.append(time.perf_counter() - t); assert s == 200, s
time.sleep(0.3); stop = True; th.join(); node.terminate(); node.wait(); shutil.rmtree(d, ignore_errors=True)
lat.sort(); times.sort()
print('%s %s: requests median %.1f ms; /v1/status probe n=%d p50 %.2f ms p99 %.1f ms max %.1f ms' % (os.path.basename(binary), scenario, times[len(times)//2]*1e3, len(lat), lat[len(lat)//2]*1e3, lat[int(len(lat)*0.99)]*1e3, lat[-1]*1e3))
