"""GPU to GPU, as CUDA's p2pBandwidthLatencyTest measures it: for every pair, cudaDeviceCanAccessPeer,
cudaDeviceEnablePeerAccess both ways where it can, then cudaMemcpyPeerAsync on the sender's stream
timed with CUDA events (P2P writes, copy engines); both directions at once on the two GPUs' streams,
one clock spanning both; and the latency of a 16-byte copy. A pair without peer access is measured
too, as the sample does with P2P=Disabled: the driver stages its copies through host memory, and
the record says so. Each figure is set against the link's peak (peaks.link_peak: NVLink generation x
active links x per-link rate, else PCIe generation x width), the slower GPU's side of the pair.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any, NamedTuple

import numpy

from devcheck.commands.bench.cases import Budget, rate_record
from devcheck.commands.bench.timing import measure
from devcheck.machine.model import peaks

LATENCY_BYTES = 16  # one int4, p2pBandwidthLatencyTest's latency copy
MIN_BYTES, MAX_BYTES = 2**20, 64 * 2**20
ALREADY_ENABLED = 704  # cudaErrorPeerAccessAlreadyEnabled: CuPy turned it on earlier (device.pyx does so)
CALLS_PER_CELL = 16  # copies a figure takes at least (the first, a warm-up, sizing, three samples), and margin
CHECKED_BYTES = 2**20  # of each copy, read back and compared with what was sent


class Gpus(NamedTuple):
    """The GPUs a case across devices runs on; `name` ("cuda:0-7") stands for them in records, skips and
    check ids."""

    name: str
    members: list[tuple[Any, Any]]  # (engine Device, DeviceFacts)


def group(members: list[tuple[Any, Any]]) -> Gpus:
    ids = [d.index for d, _ in members]
    if not ids:
        return Gpus("cuda", members)
    if ids == list(range(ids[0], ids[-1] + 1)):
        return Gpus(f"cuda:{ids[0]}-{ids[-1]}" if len(ids) > 1 else f"cuda:{ids[0]}", members)
    return Gpus("-".join(f"cuda:{k}" for k in ids), members)


class StreamsClock:
    """CUDA events around work on several GPUs' streams, one clock for all (p2pBandwidthLatencyTest's
    bidirectional timing): the first stream records the start, every other waits for it; each records
    its end, and the first waits for them all before its own end."""

    name = "CUDA events"

    def __init__(self, cupy: Any, lanes: list[tuple[int, Any]]):
        self.cupy, self.lanes, self.ends = cupy, lanes, []
        for device, _ in lanes:
            with cupy.cuda.Device(device):
                self.ends.append(cupy.cuda.Event())
        with cupy.cuda.Device(lanes[0][0]):
            self.start = cupy.cuda.Event()

    def time(self, fn: Any, calls: int = 1) -> float:
        """Seconds per call, over `calls` calls back to back."""
        gpu = self.cupy.cuda.Device
        (first, stream), others = self.lanes[0], self.lanes[1:]
        with gpu(first):
            self.start.record(stream)
        for device, other in others:
            with gpu(device):
                other.wait_event(self.start)
        with gpu(first):  # issued from the first GPU, as the sample does after cudaSetDevice(i)
            for _ in range(calls):
                fn()
        for (device, other), end in zip(others, self.ends[1:], strict=True):
            with gpu(device):
                end.record(other)
        with gpu(first):
            for end in self.ends[1:]:
                stream.wait_event(end)
            self.ends[0].record(stream)
            self.ends[0].synchronize()
        return self.cupy.cuda.get_elapsed_time(self.start, self.ends[0]) / 1000 / calls


def pairs(n: int, ring: bool) -> list[tuple[int, int]]:
    """Every ordered pair, or (a budget's share) each GPU to the next, which still uses every GPU's link
    both ways."""
    if ring and n > 2:
        return [(k, (k + 1) % n) for k in range(n)]
    return list(permutations(range(n), 2))


def enable_peer_access(cupy: Any, device: int, peer: int) -> None:
    """cudaDeviceEnablePeerAccess from `device` to `peer`; already on is fine."""
    runtime = cupy.cuda.runtime
    with cupy.cuda.Device(device):
        try:
            runtime.deviceEnablePeerAccess(peer)
        except runtime.CUDARuntimeError as e:
            if e.status != ALREADY_ENABLED:
                raise


def link_peak(device: Any, facts: Any) -> peaks.Peak:
    """The GPU's own link to the others. NVML's link facts come from facts.link_facts, the one NVML reader
    here; a GPU NVML cannot read gets no peak, and says so."""
    from devcheck.machine.model.facts import link_facts

    try:
        found = link_facts(device.index)
    except Exception as e:
        return peaks.Peak(None, "GB/s", f"NVML's link facts could not be read: {type(e).__name__}: {e}")
    return peaks.link_peak(
        found.get("nvlink_version"),
        found.get("nvlink_links") or 0,
        found.get("pcie_gen_max"),
        found.get("pcie_width_max"),
    )


class _Pair(NamedTuple):
    sender: Any  # engine Device
    receiver: Any
    peer: bool  # cudaDeviceCanAccessPeer
    peak: peaks.Peak  # one direction

    @property
    def path(self) -> str:
        return "p2p" if self.peer else "staged through host"


def _pair(a: tuple, b: tuple, peer: bool, links: dict[str, peaks.Peak]) -> _Pair:
    (sender, sender_facts), (receiver, receiver_facts) = a, b
    if peer:
        return _Pair(sender, receiver, True, peaks.pair_peak(links[sender.name], links[receiver.name]))
    pcie = peaks.pair_peak(sender_facts.pcie_peak, receiver_facts.pcie_peak)
    basis = f"no peer access: the driver stages each copy through host memory; {pcie.basis}"
    return _Pair(sender, receiver, False, peaks.Peak(pcie.value, "GB/s", basis))


class _Buffers:
    """Two allocations on each GPU (what it sends, what it receives) and a non-blocking stream; what GPU d
    sends is a seeded byte pattern plus d, so what arrives can be checked (as nvbandwidth does)."""

    def __init__(self, cupy: Any, devices: list[int], nbytes: int):
        self.cupy, self.nbytes, self.send, self.receive, self.stream = cupy, nbytes, {}, {}, {}
        # seeded random bytes where copies are read back (their first CHECKED_BYTES), then that block again
        # plus its number: a copy that brought another block of the buffer there does not read back intact
        block = numpy.random.default_rng(5).integers(0, 256, min(nbytes, CHECKED_BYTES), dtype=numpy.uint8)
        numbers = numpy.arange(-(-nbytes // block.size), dtype=numpy.uint8)[:, None]
        self.pattern = (block[None, :] + numbers).reshape(-1)[:nbytes]
        for d in devices:
            with cupy.cuda.Device(d):
                self.send[d], self.receive[d] = cupy.cuda.alloc(nbytes), cupy.cuda.alloc(nbytes)
                sent = self.pattern + numpy.uint8(d % 256)  # held while its address is used
                self.send[d].copy_from_host(sent.ctypes.data, nbytes)
                self.stream[d] = cupy.cuda.Stream(non_blocking=True)

    def copy(self, src: int, dst: int, nbytes: int) -> None:
        """src's send buffer into dst's receive buffer, on src's stream (a P2P write)."""
        self.cupy.cuda.runtime.memcpyPeerAsync(
            self.receive[dst].ptr, dst, self.send[src].ptr, src, nbytes, self.stream[src].ptr
        )

    def arrived(self, src: int, dst: int) -> bool:
        """Whether dst's receive buffer starts with exactly what src sent (its first CHECKED_BYTES: all of
        every copy would take longer than the copies, 64 MiB read back per pair)."""
        for d in (src, dst):
            self.stream[d].synchronize()
        n = min(self.nbytes, CHECKED_BYTES)
        got = numpy.empty(n, numpy.uint8)
        with self.cupy.cuda.Device(dst):
            self.receive[dst].copy_to_host(got.ctypes.data, n)
        return bool(numpy.array_equal(got, self.pattern[:n] + numpy.uint8(src % 256)))

    def clock(self, *devices: int) -> StreamsClock:
        return StreamsClock(self.cupy, [(d, self.stream[d]) for d in devices])


def _copy_bytes(cupy: Any, first: tuple[int, int], seconds_per_cell: float) -> int:
    """The largest power of two from 1 to 64 MiB whose copy fits CALLS_PER_CELL times in a figure's share
    of the budget, at the rate of the slowest of three 1 MiB copies between the first pair after one more."""
    probe = _Buffers(cupy, list(first), MIN_BYTES)
    clock = probe.clock(first[0])
    seconds = max([clock.time(lambda: probe.copy(*first, MIN_BYTES)) for _ in range(4)][1:])
    fits = MIN_BYTES / max(seconds, 1e-9) * seconds_per_cell / CALLS_PER_CELL
    nbytes = MIN_BYTES
    while nbytes * 2 <= min(fits, MAX_BYTES):
        nbytes *= 2
    return nbytes


def matrix(gpus: Gpus, budget: Budget, ring: bool = False) -> list[dict]:
    """One record per ordered pair (P2P write bandwidth, with the 16-byte latency) and one per unordered
    pair (both directions at once), each against the pair's peak."""
    members = gpus.members
    cupy = members[0][0].native
    ids = [d.index for d, _ in members]
    chosen = pairs(len(members), ring)
    runtime = cupy.cuda.runtime
    peer = {(i, j): bool(runtime.deviceCanAccessPeer(ids[i], ids[j])) for i, j in permutations(range(len(ids)), 2)}
    for i, j in chosen:
        for a, b in ((i, j), (j, i)):
            if peer[(a, b)]:
                enable_peer_access(cupy, ids[a], ids[b])
    links = {d.name: link_peak(d, f) for d, f in members}
    both = sorted({(min(i, j), max(i, j)) for i, j in chosen})
    share = 0.8 * budget.seconds / (len(chosen) + len(both))
    buffers = _Buffers(cupy, ids, _copy_bytes(cupy, (ids[chosen[0][0]], ids[chosen[0][1]]), share))
    latency_share = 0.2 * budget.seconds / len(chosen)
    records = []
    for i, j in chosen:
        pair = _pair(members[i], members[j], peer[(i, j)], links)
        records.append(_write(buffers, pair, Budget(budget.repeat, share), latency_share))
    for i, j in both:
        there, back = (_pair(members[a], members[b], peer[(a, b)], links) for a, b in ((i, j), (j, i)))
        records.append(_bidirectional(buffers, there, back, Budget(budget.repeat, share)))
    return records


def _write(buffers: _Buffers, pair: _Pair, budget: Budget, latency_seconds: float) -> dict:
    src, dst, n = pair.sender.index, pair.receiver.index, buffers.nbytes
    clock = buffers.clock(src)
    first, stats = measure(lambda: buffers.copy(src, dst, n), clock, budget.repeat, budget.seconds)
    _, latency = measure(lambda: buffers.copy(src, dst, LATENCY_BYTES), clock, budget.repeat, latency_seconds)
    record = rate_record(
        f"p2p write to {pair.receiver.name}", pair.sender, "bytes", [n], first, stats, clock, n, "GB/s", pair.peak
    )
    record.update(peer=pair.receiver.name, path=pair.path, latency_s=latency.median, latency_stats=latency.to_dict())
    record.update(intact=buffers.arrived(src, dst))
    return record


def _bidirectional(buffers: _Buffers, there: _Pair, back: _Pair, budget: Budget) -> dict:
    a, b, n = there.sender.index, there.receiver.index, buffers.nbytes

    def both_ways() -> None:
        buffers.copy(a, b, n)
        buffers.copy(b, a, n)

    clock = buffers.clock(a, b)
    first, stats = measure(both_ways, clock, budget.repeat, budget.seconds)
    peak = peaks.pair_peak(there.peak, back.peak, directions=2)
    case = f"p2p bidirectional with {there.receiver.name}"
    record = rate_record(case, there.sender, "bytes", [n], first, stats, clock, 2 * n, "GB/s", peak)
    paths = {there.path, back.path}
    record.update(peer=there.receiver.name, path=paths.pop() if len(paths) == 1 else "mixed")
    record.update(intact=buffers.arrived(a, b) and buffers.arrived(b, a))
    return record
