#!/usr/bin/env python3
"""mksnap.py DIR VMNAME MEMORY_MIB [CREATED_S] — writes a minimal snapshot directory
(vm.state with the format of docs/snapshots.md: magic | version | msgpack | CRC-32,
plus a sparse `memory` file) without KVM, for tests/runner/snapshots.sh. It is an
independent writer of the documented format: `provium snapshots ls` must accept it."""
import os
import struct
import sys
import zlib


def mp(o):
    """The msgpack subset the state uses: maps, arrays, str, bin, uint."""
    if isinstance(o, dict):
        out = bytes([0xde]) + struct.pack(">H", len(o))
        for k, v in o.items():
            out += mp(k) + mp(v)
        return out
    if isinstance(o, list):
        return bytes([0xdc]) + struct.pack(">H", len(o)) + b"".join(mp(x) for x in o)
    if isinstance(o, str):
        b = o.encode()
        return bytes([0xda]) + struct.pack(">H", len(b)) + b
    if isinstance(o, bytes):
        return bytes([0xc5]) + struct.pack(">H", len(o)) + o
    if isinstance(o, int):
        return bytes([0xcf]) + struct.pack(">Q", o)
    raise TypeError(o)


def main():
    d, name, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
    created = int(sys.argv[4]) if len(sys.argv) > 4 else 1700000000
    os.makedirs(d, exist_ok=True)
    state = mp({
        "config": {"name": name, "kernel": "/k/vmlinux", "initrd": "", "cmdline": "",
                   "memory_mib": mib, "cpus": 1, "created_ns": created * 10**9},
        "vcpus": [{}],
        "vm": {"clock_ns": 5 * 10**9},
        "serial": {},
        "devices": [{"kind": "virtio-rng", "id": "rng0", "mmio": 0xd0000000, "irq": 5,
                     "state": {}}],
    })
    hdr = b"PVSNAP\r\n" + struct.pack("<IIQ", 1, 0, len(state))
    body = hdr + state
    with open(os.path.join(d, "vm.state"), "wb") as f:
        f.write(body + struct.pack("<I", zlib.crc32(body) & 0xffffffff))
    with open(os.path.join(d, "memory"), "wb") as f:
        f.truncate(mib << 20)
        f.seek(1 << 20)
        f.write(b"\x01" * 8192)


main()
