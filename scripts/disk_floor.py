#!/usr/bin/env python3
"""The physical floor of a small-object PUT on this disk: what one replica's write costs
when done with the durability Swift promises, by the filesystem alone, with no server.

Each writer repeats what an object server does for a new object: create its hash
directory, fill an unnamed temp file (O_TMPFILE) with the object and its metadata xattr,
fsync it, link it into the hash directory, then fsync the hash directory and the
directory above it (the new entry). N writers run at once, as N replica writes in flight
do in a cluster (a client concurrency of C with R replicas is about C x R writers).

    scripts/disk_floor.py DIR WRITERS [SECONDS] [SIZE]

prints writes/s and p50/p99 latency in ms. DIR must be on the filesystem to measure
(it gets a scratch directory that is removed afterwards).
"""

import ctypes
import os
import shutil
import sys
import tempfile
import threading
import time

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400


def _link_unnamed(fd, target):
    src = f"/proc/self/fd/{fd}".encode()
    if _libc.linkat(_AT_FDCWD, src, _AT_FDCWD, target.encode(), _AT_SYMLINK_FOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def measure(directory, writers, seconds=4.0, size=4096):
    """(writes per second, p50 ms, p99 ms) of `writers` concurrent durable writes."""
    scratch = tempfile.mkdtemp(prefix="disk-floor-", dir=directory)
    body = os.urandom(size)
    metadata = b"x" * 300  # about what Swift's pickled metadata of a 4 KiB object weighs
    latencies = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    failures = []

    def writer(n):
        suffix = os.path.join(scratch, str(n))
        os.mkdir(suffix)
        k = 0
        mine = []
        try:
            while time.monotonic() < deadline:
                start = time.monotonic()
                hash_dir = os.path.join(suffix, str(k))
                os.mkdir(hash_dir)
                fd = os.open(hash_dir, os.O_WRONLY | os.O_TMPFILE, 0o600)
                try:
                    os.write(fd, body)
                    os.setxattr(fd, "user.swift.metadata", metadata)
                    os.fsync(fd)
                    _link_unnamed(fd, os.path.join(hash_dir, "1.00000.data"))
                finally:
                    os.close(fd)
                _fsync_dir(hash_dir)
                _fsync_dir(suffix)
                mine.append(time.monotonic() - start)
                k += 1
        except OSError as e:
            failures.append(e)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if failures:
        raise failures[0]
    latencies.sort()
    if not latencies:
        return 0.0, 0.0, 0.0
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000.0
    return len(latencies) / seconds, pick(0.50), pick(0.99)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    directory, writers = sys.argv[1], int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 4.0
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 4096
    rate, p50, p99 = measure(directory, writers, seconds, size)
    print(f"{writers} writers of {size} bytes: {rate:.0f} writes/s, p50 {p50:.2f} ms, "
          f"p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
