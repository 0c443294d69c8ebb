#!/usr/bin/env python3
"""A fake recon cluster for the fan-out benchmark (stdlib only).

Writes <dir>/object.ring.gz (format v1) listing HOSTS hosts on loopback addresses
127.0.X.Y, all on one port, and serves GET /recon/async on each of them after DELAY
seconds. The first HANG hosts accept connections and never answer. Runs until killed.

usage: recon_fake_cluster.py DIR HOSTS DELAY HANG PORT
"""
import asyncio
import gzip
import json
import struct
import sys


def write_ring(path, addrs):
    devs = [{"id": i, "region": 1, "zone": 1 + i % 3, "ip": ip, "port": port,
             "replication_ip": ip, "replication_port": port, "device": "d1",
             "weight": 100.0, "meta": ""} for i, (ip, port) in enumerate(addrs)]
    meta = json.dumps({"byteorder": "little", "devs": devs, "part_shift": 32,
                       "replica_count": 1}, sort_keys=True).encode()
    raw = b"R1NG" + struct.pack("!H", 1) + struct.pack("!I", len(meta)) + meta
    raw += struct.pack("<H", 0)
    with gzip.open(path, "wb") as f:
        f.write(raw)


async def main():
    out_dir, hosts, delay, hang, port = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    addrs = [("127.0.%d.%d" % (i // 250, i % 250 + 1), port) for i in range(hosts)]
    body = json.dumps({"async_pending": 1, "async_pending_last": 1.0}).encode()
    resp = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(body)) + body

    def handler(never):
        async def handle(reader, writer):
            try:
                await reader.readuntil(b"\r\n\r\n")
                if never:
                    await asyncio.sleep(3600)
                await asyncio.sleep(delay)
                writer.write(resp)
                await writer.drain()
            except Exception:
                pass
            finally:
                writer.close()
        return handle

    servers = []
    for i, (ip, p) in enumerate(addrs):
        servers.append(await asyncio.start_server(handler(i < hang), ip, p, backlog=64))
    write_ring(out_dir + "/object.ring.gz", addrs)
    print("ready", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
