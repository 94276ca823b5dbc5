#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the device fuzzers into their corpora
(tests/fuzz/<name>_corpus/seed_*): one well-formed instance of each request kind,
so the fuzzer starts from inputs that reach deep into the device. The script
language is fuzz_guest.h's. Re-run after changing a target's input layout:
    tests/fuzz/mkseeds.py
Everything else in a corpus came from fuzzing (libFuzzer -merge=1) and stays."""
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.abspath(__file__))

HDR, DATA, STATUS = 0x4000, 0x5000, 0x7000


def u16(v):
    return struct.pack('<H', v & 0xffff)


def wmem(off, data):
    out = b''
    for i in range(0, len(data), 255):
        part = data[i:i + 255]
        out += bytes([0]) + u16(off + i) + bytes([len(part)]) + part
    return out


def chain(q, segs):
    """segs: (addr, len, writable)"""
    out = bytes([9, q, len(segs) - 1])
    for a, n, w in segs:
        out += u16(a) + u16(n) + bytes([1 if w else 0])
    return out + b'\0'


def kick(q):
    return bytes([3, q])


def used(q):
    return bytes([7, q])


TIMERS = bytes([6])
LOOP = bytes([12])
SETUP = bytes([11])


def host(args):
    return bytes([8, len(args)]) + bytes(args)


def mmio_w(off, val, lensel=2):
    return bytes([4]) + u16(off) + bytes([lensel]) + struct.pack('<Q', val)


def mmio_r(off, lensel=2):
    return bytes([5]) + u16(off) + bytes([lensel])


def write(name, seeds):
    d = os.path.join(ROOT, name + '_corpus')
    os.makedirs(d, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(d, 'seed_' + k), 'wb') as f:
            f.write(v)


# ---- virtio-blk: [flags][8 bytes per rule] script ----
def blk_req(typ, sector, data_len, dev_writes, extra=b''):
    s = wmem(HDR, struct.pack('<IIQ', typ, 0, sector))
    if extra:
        s += wmem(DATA, extra)
    segs = [(HDR, 16, False)]
    if data_len:
        segs.append((DATA, data_len, dev_writes))
    segs.append((STATUS, 1, True))
    return s + chain(0, segs) + kick(0) + used(0)


def blk_rule(kind, frm, span, to_max=0, count=0, prob=4, delay=0, off=0):
    return bytes([kind, frm, span, to_max, count, prob, delay, off])


def dz(sector, n, flags=0):
    return struct.pack('<QII', sector, n, flags)


blk = {
    'read': bytes([0]) + blk_req(0, 3, 1024, True),
    'write': bytes([0]) + blk_req(1, 60, 2048, False, b'\x5a' * 2048),
    'flush_getid': bytes([1]) + blk_req(4, 0, 0, False) + blk_req(8, 0, 20, True),
    'discard': bytes([0]) + blk_req(11, 0, 16, False, dz(10, 4)),
    'write_zeroes': bytes([1]) + blk_req(13, 0, 32, False, dz(1, 2) + dz(62, 2, 1)),
    # a slow rule, the segment rewritten past the end while it waits, then timers
    'slow_rewrite': bytes([0x04]) + blk_rule(2, 0, 255, delay=1) +
    blk_req(13, 0, 16, False, dz(0, 1)) + wmem(DATA, dz(63, 4096)) + TIMERS + used(0),
    'corrupt_zero_len': bytes([0x04]) + blk_rule(4, 0, 10, to_max=1) + blk_req(0, 0, 0, True) +
    blk_req(0, 5, 512, True),
    'insert_under_slow': bytes([0x05]) + blk_rule(2, 0, 255, delay=1) +
    blk_req(1, 40, 4096, False, b'\x11' * 512) + host([3]) + TIMERS + used(0),
    'fail_drop_crash': bytes([0x09]) + blk_rule(1, 0, 8) + blk_rule(3, 9, 20) +
    blk_req(1, 4, 512, False, b'\x22' * 512) + blk_req(1, 12, 512, False) + host([1]) +
    host([7]) + host([2]) + blk_req(0, 0, 512, True),
}
write('blk', blk)


# ---- virtio-console: queue 0 receive, 1 transmit; HOST [op] bytes ----
console = {
    'tx': wmem(DATA, b'hello, console\n') + chain(1, [(DATA, 15, False)]) + kick(1) + used(1),
    'rx': host([0]) + b'' + chain(0, [(DATA, 64, True)]) + kick(0) + used(0) +
    bytes([8, 6, 0]) + b'typed',
    'aliased': wmem(DATA, b'x' * 200) + chain(1, [(DATA, 0xffff, False)] * 5) +
    b''.join(bytes([2, 1, 0]) for _ in range(15)) + kick(1) + used(1),
    'overflow_and_state': host([2]) + chain(0, [(DATA, 4096, True), (DATA + 4096, 4096, True)]) +
    kick(0) + host([1]) + kick(0) + used(0),
}
write('console', console)


# ---- virtio-net: [rule bits] script; queue 0 RX, 1 TX; HOST [op] len:u16 bytes ----
def frame(n=60):
    return b'\xff' * 6 + b'\x02\x00\x00\x00\x00\x01' + b'\x88\xb5' + bytes(i & 0xff for i in range(n - 14))


def net_rx(n=60, op=0):
    """A frame of n bytes from the network (HOST args hold at most 255 bytes: the
    rest of a longer frame is whatever the harness's buffer held)."""
    args = (bytes([op]) + u16(n + 12) + bytes(12) + frame(n))[:255]
    return bytes([8, len(args)]) + args


net = {
    'tx': bytes([0]) + wmem(DATA, bytes(12) + frame()) + chain(1, [(DATA, 72, False)]) +
    kick(1) + used(1),
    'rx': bytes([0]) + chain(0, [(DATA, 2048, True)]) + kick(0) + net_rx() + LOOP + used(0),
    'delay_rewrite': bytes([1]) + wmem(DATA, bytes(12) + frame()) +
    chain(1, [(DATA, 72, False)]) + kick(1) + wmem(DATA, b'\0' * 72) + TIMERS + used(1) +
    chain(0, [(DATA + 0x1000, 2048, True)]) + kick(0) + net_rx() + TIMERS + used(0),
    'dup_corrupt_link': bytes([6]) + chain(0, [(DATA, 2048, True)] * 2) + kick(0) + net_rx() +
    host([2, 0, 0, 0]) + net_rx() + host([2, 0, 0, 1]) + host([4, 0, 0]) + net_rx(1500) +
    LOOP + used(0),
    'small_rx_buffer': bytes([0]) + chain(0, [(DATA, 40, True)]) + kick(0) + net_rx(200) +
    LOOP,
}
write('net', net)


# ---- virtio-vsock: 0 RX, 1 TX, 2 events; guest CID 42, a listener on host port 5000 ----
def vhdr(src_port, dst_port, op, length=0, flags=0, buf_alloc=262144, fwd=0, typ=1,
         src_cid=42, dst_cid=2):
    return struct.pack('<QQIIIHHIII', src_cid, dst_cid, src_port, dst_port, length, typ, op,
                       flags, buf_alloc, fwd)


def vsend(h, payload=b''):
    return wmem(DATA, h + payload) + chain(1, [(DATA, len(h) + len(payload), False)]) + \
        kick(1) + used(1)


RXBUFS = b''.join(chain(0, [(0x8000 + i * 0x800, 0x800, True)]) for i in range(4)) + kick(0)
vsock = {
    'connect_and_data': RXBUFS + vsend(vhdr(1000, 5000, 1)) + used(0) +
    vsend(vhdr(1000, 5000, 5, 5), b'hello') + host([2, 0]) + host([1, 0, 4, 0]) + used(0),
    'host_connect': RXBUFS + host([0, 0, 0x39, 0x05]) + used(0) +
    vsend(vhdr(1337, 49152, 2)) + host([1, 0, 16, 0]) + LOOP + used(0),
    'shutdown_rst': RXBUFS + vsend(vhdr(7, 5000, 1)) + vsend(vhdr(7, 5000, 4, flags=3)) +
    vsend(vhdr(7, 5000, 3)) + used(0),
    'bad_packets': RXBUFS + vsend(vhdr(1, 2, 5, 9)) + SETUP + RXBUFS +
    vsend(vhdr(1, 5000, 1, typ=2)) + vsend(vhdr(1, 5000, 6)) + vsend(vhdr(1, 5000, 7)) +
    used(0),
    'transport_reset': RXBUFS + chain(2, [(0x7000, 8, True)]) + kick(2) +
    vsend(vhdr(9, 5000, 1)) + host([5]) + host([6]) + LOOP + used(2) + used(0),
}
write('vsock', vsock)


# ---- virtio-mmio: [device pick] script (bit 7: start set up) ----
def negotiate():
    s = mmio_w(0x70, 0) + mmio_w(0x70, 1) + mmio_w(0x70, 3)
    s += mmio_w(0x14, 0) + mmio_r(0x10) + mmio_w(0x14, 1) + mmio_r(0x10)
    s += mmio_w(0x24, 0) + mmio_w(0x20, 0x30000000) + mmio_w(0x24, 1) + mmio_w(0x20, 1)
    return s + mmio_w(0x70, 11) + mmio_r(0x70)


def queue(q, num=16):
    return (mmio_w(0x30, q) + mmio_r(0x34) + mmio_w(0x38, num) + mmio_w(0x80, q * 0x1000) +
            mmio_w(0x90, q * 0x1000 + 0x400) + mmio_w(0xa0, q * 0x1000 + 0x800) +
            mmio_w(0x44, 1) + mmio_r(0x44))


mmio = {}
for pick, name, nq in ((0, 'rng', 1), (1, 'console', 2), (2, 'vsock', 3), (3, 'blk', 1),
                       (4, 'net', 2)):
    s = negotiate() + b''.join(queue(q) for q in range(nq)) + mmio_w(0x70, 15)
    s += b''.join(mmio_r(0x100 + i, i & 3) for i in range(0, 24, 4))
    s += mmio_w(0x50, 0) + mmio_r(0x60) + mmio_w(0x64, 3) + mmio_r(0xfc) + mmio_w(0x70, 0)
    mmio['setup_' + name] = bytes([pick]) + s
    mmio['running_' + name] = bytes([pick | 0x80]) + chain(0, [(DATA, 64, True)]) + \
        mmio_w(0x50, 0) + mmio_w(0x100, 0xffffffff, 3) + mmio_w(0x30, 7) + mmio_r(0x34) + \
        mmio_w(0x44, 0) + mmio_w(0x70, 0x80)
write('mmio', mmio)


# ---- serial: [op offset value] triples: 0 write, 1 read, 2 input, 3 save/load ----
def sw(off, v):
    return bytes([0, off, v])


def sr(off):
    return bytes([1, off, 0])


serial = {
    'probe': sw(7, 0x55) + sr(7) + sw(1, 0) + sr(1) + sw(4, 0x10) + sr(6) + sw(4, 0x1f) +
    sr(6) + sw(4, 0) + sw(2, 0xc7) + sr(2) + sw(2, 0),
    'dlab_baud': sw(3, 0x80) + sw(0, 1) + sw(1, 0) + sr(0) + sr(1) + sw(3, 0x03) + sr(3),
    'tx_irq': sw(1, 0x02) + sr(2) + sw(0, 0x41) + sr(2) + sr(5) + sw(1, 0),
    'rx_loop': sw(1, 0x05) + sw(2, 0xc1) + bytes([2, 0, 3]) + sr(2) + sr(0) + sr(5) +
    sw(4, 0x10) + sw(0, 0x42) + sr(0) + bytes([3, 0, 0]) + sr(0),
    'overrun': sw(1, 0x0f) + bytes([2, 0, 255]) + sr(5) + sr(2) + sw(2, 0x02) + sr(5),
}
write('serial', serial)


# ---- the agent connection: [op a] ... (fuzz_agent.h) ----
agent = {
    'exec': bytes([0, 1]) + bytes([2, 0]) + bytes([5, 0]) + bytes([1, 0, 5, 0]) + bytes([6, 0]),
    'spawn_streams': bytes([0, 2, 2, 0, 10, 0, 3, 0, 5, 0, 1, 0, 5, 0, 6, 0, 14, 0]),
    'unknown_ids': bytes([2, 0x81, 3, 0x82, 1, 0x83, 4, 0x84, 5, 0]),
    'error_reply': bytes([0, 0, 4, 1, 5, 0, 6, 0]),
    'nan_key': bytes([0, 0, 1, 11]) + b'\x82\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00\x01\xa1a' +
    bytes([5, 0, 6, 0]),
    'broken_framing': bytes([0, 0, 7, 6]) + b'\xff\xff\xff\xff\x00\x00' + bytes([5, 0]),
}
write('agent', agent)


# ---- the snapshot loader: the msgpack state of vm.state (the harness adds the
# header and CRC). seed_vm_* are real states of a VM made by the VMM; these are
# small hand-made ones. ----
def mp(v):
    """A tiny msgpack encoder: dict, list, str, bytes, int >= 0, bool."""
    if isinstance(v, bool):
        return b'\xc3' if v else b'\xc2'
    if isinstance(v, int):
        return bytes([v]) if v < 128 else b'\xcf' + struct.pack('>Q', v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else b'\xd9' + bytes([len(b)])) + b
    if isinstance(v, bytes):
        return b'\xc5' + struct.pack('>H', len(v)) + v
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b''.join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b''.join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


BASE_FEATURES = (1 << 32) | (1 << 29) | (1 << 28)  # VERSION_1, EVENT_IDX, INDIRECT_DESC


def transport(nq, device_id, features):
    q = {'num': 16, 'ready': 1, 'desc': 0, 'avail': 0x400, 'used': 0x800,
         'last_avail': 3, 'used_idx': 3}
    return {'device_id': device_id, 'status': 15, 'host_features': BASE_FEATURES | features,
            'driver_features': BASE_FEATURES,
            'dev_feat_sel': 0, 'queue_sel': 0, 'isr': 1, 'config_generation': 0,
            'queues': [q] * nq}


regs = {k: 0 for k in ('ier', 'fcr', 'lcr', 'mcr', 'lsr', 'msr', 'scr', 'dll', 'dlm',
                       'thr_ipending')}
state = {
    'config': {'name': 'crafted', 'memory_mib': 16, 'cpus': 1},
    'vcpus': [{}], 'vm': {}, 'serial': dict(regs, rx=b'abc'),
    'devices': [
        {'kind': 'virtio-console', 'id': 'hvc0', 'mmio': 0, 'irq': 5,
         'state': {'transport': transport(2, 3, 0), 'pending_input': b'in'}},
        {'kind': 'virtio-blk', 'id': 'vda', 'mmio': 0, 'irq': 6,
         'state': {'transport': transport(1, 2, 0x6244), 'writeback': True, 'detached': False,
                   'cache': [[1, bytes(512)], [99, bytes(512)]]}},
        {'kind': 'virtio-net', 'id': 'net0', 'mmio': 0, 'irq': 7,
         'state': {'mac': bytes(6), 'link_up': True,
                   'transport': transport(2, 1, (1 << 5) | (1 << 16))}},
        {'kind': 'virtio-vsock', 'id': 'vsock0', 'mmio': 0, 'irq': 8,
         'state': {'cid': 3, 'transport': transport(3, 19, 0)}},
    ],
}
write('snapshot', {
    'crafted_devices': mp(state),
    'zero_cpus': mp(dict(state, config={'name': 'z', 'memory_mib': 16, 'cpus': 0}, vcpus=[])),
    'huge_count': b'\x81\xa6config\xdd\x7f\xff\xff\xff\xc0',
})
