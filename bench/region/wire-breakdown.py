#!/usr/bin/env python3
"""Where one client's write spends its time, read off a packet capture of a DWCP region.

    wire-breakdown.py CAPTURE.pcap REPLICATION_PORTS API_PORT

For each request on API_PORT (one client, one request at a time) it takes four moments off the
wire: the request arriving, the leader's first replication frame carrying entries (a frame over
80 bytes), the first frame back to the leader, and the response leaving. It prints the medians
of the three phases between them: propose (HTTP, validation, Raft, up to the entries leaving),
replicate (a follower receiving, fsyncing and acknowledging), commit->response (the leader
committing, applying to its views and answering). Timestamps are the kernel's, taken on
loopback, so they do not depend on either process's threads.
"""
import statistics
import struct
import sys


def packets(path):
    """(time, source port, destination port, TCP payload) of each packet that carries data."""
    with open(path, 'rb') as f:
        header = f.read(24)
        nano = struct.unpack('<I', header[:4])[0] == 0xa1b23c4d
        link = struct.unpack('<I', header[20:24])[0]
        skip = {0: 4, 1: 14, 113: 16}.get(link, 14)
        while True:
            record = f.read(16)
            if len(record) < 16:
                return
            seconds, fraction, length, _ = struct.unpack('<IIII', record)
            data = f.read(length)
            ip = data[skip:]
            if len(ip) < 20 or ip[0] >> 4 != 4:
                continue
            tcp = ip[(ip[0] & 15) * 4:]
            source, destination = struct.unpack('>HH', tcp[:4])
            payload = tcp[(tcp[12] >> 4) * 4:]
            if payload:
                yield seconds + fraction / (1e9 if nano else 1e6), source, destination, payload


def members(payload):
    """Sender and recipient of a replication frame: length u32, version u8, group, from, to."""
    try:
        at = 5 + 1 + payload[5]
        sender = payload[at + 1:at + 1 + payload[at]].decode()
        at += 1 + payload[at]
        return sender, payload[at + 1:at + 1 + payload[at]].decode()
    except (IndexError, UnicodeDecodeError):
        return None, None


def main():
    replication = {int(port) for port in sys.argv[2].split(',')}
    api = int(sys.argv[3])
    phases = ([], [], [])
    request = None
    for time, source, destination, payload in packets(sys.argv[1]):
        if destination == api:
            request = {'arrived': time}
        elif source == api:
            if request and 'acknowledged' in request:
                phases[0].append(request['sent'] - request['arrived'])
                phases[1].append(request['acknowledged'] - request['sent'])
                phases[2].append(time - request['acknowledged'])
            request = None
        elif request and (source in replication or destination in replication):
            sender, recipient = members(payload)
            if sender is None:
                continue
            if 'sent' not in request and len(payload) > 80:
                request['sent'], request['leader'] = time, sender
            elif 'sent' in request and 'acknowledged' not in request and recipient == request['leader']:
                request['acknowledged'] = time
    if not phases[0]:
        sys.exit('no complete request in the capture')
    median = lambda values: statistics.median(values) * 1000
    print('%d writes: propose %.3f ms, replicate %.3f ms, commit->response %.3f ms (medians)'
          % (len(phases[0]), median(phases[0]), median(phases[1]), median(phases[2])))


main()
