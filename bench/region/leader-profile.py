"""Sorts the leader's event-loop samples (`perf script -F ip,sym` on stdin) into parts of a write
by what each sample's stack holds, first match wins, and prints each part's share of the loop."""
import re
import subprocess
import sys

PARTS = [
    ("the read of the answer after the apply (Node.submit)", r"Node\.submitUnmeasured"),
    ("SQLite's file locks (fcntl)", r"fcntl"),
    ("the apply (with the answers read in it)", r"ViewStore\.apply"),
    ("decoding the request body", r"NodeAPI\.decode"),
    ("the check against the views before proposing", r"checkAgainstViews"),
    ("the response's write (NIO, the kernel's loopback send)", r"NIOAsyncWriter|_doOutboundWrites|writeToSocket|flushNow"),
    ("HTTP parsing (NIO's llhttp)", r"HTTPDecoder"),
]

samples = []
for block in sys.stdin.read().split("\n\n"):
    frames = [line.split(None, 1)[1] for line in block.strip().split("\n") if len(line.split(None, 1)) == 2]
    if frames:
        samples.append(frames)
names = sorted({frame for sample in samples for frame in sample})
demangled = subprocess.run(
    ["swift", "demangle", "--simplified", "--compact"], input="\n".join(names), capture_output=True, text=True
).stdout.split("\n")
readable = dict(zip(names, demangled))
counts = {name: 0 for name, _ in PARTS}
rest = 0
for sample in samples:
    stack = "\n".join(readable.get(frame, frame) for frame in sample)
    for name, pattern in PARTS:
        if re.search(pattern, stack):
            counts[name] += 1
            break
    else:
        rest += 1
total = max(len(samples), 1)
print(f"{len(samples)} samples of the leader's event loop")
for name, _ in PARTS:
    print(f"{100 * counts[name] / total:5.1f} %  {name}")
print(f"{100 * rest / total:5.1f} %  everything else (tasks and their switches, the event loop, Raft, reads, the router)")

# The same samples by whose code they are in: the module of the frame nearest the leaf that names
# one (the runtime's and the kernel's frames name none, so they count for the module that called
# them; SQLite's C frames count as sqlite). Tasks run on the event loop, so a task's runtime
# overhead counts for NIOPosix, which runs its jobs.
MODULES = [
    "Hummingbird", "HummingbirdCore", "HTTPTypes", "NIOHTTP1", "NIOHTTPTypes", "NIOHTTPTypesHTTP1", "NIOCore",
    "NIOPosix", "NIOSSL", "Node", "Store", "Replication", "Query", "Scheduler", "GRDB", "Logging", "Metrics",
    "Prometheus",
]
MODULE = re.compile(r"\b(" + "|".join(MODULES) + r")\.")
# (Demangled again in full: the simplified names above leave the modules out.)
qualified = dict(
    zip(
        names,
        subprocess.run(["swift", "demangle", "--compact"], input="\n".join(names), capture_output=True, text=True)
        .stdout.split("\n"),
    )
)
owners = {}
for sample in samples:
    owner = "none (the runtime, libc or the kernel alone)"
    for frame in sample:
        name = qualified.get(frame, frame)
        if "sqlite3" in name:
            owner = "sqlite"
            break
        match = MODULE.search(name)
        if match:
            owner = match.group(1)
            break
    owners[owner] = owners.get(owner, 0) + 1
print("by module (the frame nearest the leaf that names one):")
for owner, count in sorted(owners.items(), key=lambda item: -item[1]):
    print(f"{100 * count / total:5.1f} %  {owner}")
