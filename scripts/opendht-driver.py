#!/usr/bin/python3
"""OpenDHT's side of `npm run bench:dht -- --opendht`: two DhtRunner nodes of this
process join a network of `dhtnode` processes on 127.0.0.1 at two different nodes; one
puts each value, the other gets it. Prints one JSON object: the put and get times (ms).

usage: opendht-driver.py <bootstrap port A> <bootstrap port B> <records> <warmup> <settle s>
"""
import json
import sys
import time

import opendht as dht

port_a, port_b, records, warmup, settle = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
writer, reader = dht.DhtRunner(), dht.DhtRunner()
writer.run(port=0)
reader.run(port=0)
writer.bootstrap('127.0.0.1', port_a)
reader.bootstrap('127.0.0.1', port_b)
time.sleep(settle)  # let both routing tables fill, as the libp2p network settles before its figures
puts, gets, failures = [], [], 0
for i in range(warmup + records):
    key = dht.InfoHash.get('conf-chat-bench-%d-%f' % (i, time.time()))
    value = b'bench value %d' % i
    t = time.perf_counter()
    stored = writer.put(key, dht.Value(value))
    put_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    found = reader.get(key)
    get_ms = (time.perf_counter() - t) * 1000
    if i < warmup:
        continue
    puts.append(put_ms)
    gets.append(get_ms)
    if not stored or not any(bytes(v.data) == value for v in found):
        failures += 1
writer.join()
reader.join()
print(json.dumps({'putMs': puts, 'getMs': gets, 'failures': failures}))
