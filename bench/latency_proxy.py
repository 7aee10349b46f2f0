"""A TCP proxy on 127.0.0.1 that delays every byte by half a round trip each way.

On loopback a request costs only CPU, so a benchmark there measures how many
cores the client and the registry share, not what concurrency buys over a
network. This proxy adds a fixed, realistic round-trip time (a registry in the
same region is 1-5 ms away) while forwarding bytes untouched, so TLS still
terminates at the registry and its certificate still matches 127.0.0.1.
Ordering is kept: each direction is a queue of (due time, chunk).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(deliver())
    try:
        while chunk := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay_s, chunk))
    except (ConnectionError, OSError):
        pass
    finally:
        queue.put_nowait((0.0, b""))
        await sender


async def _serve(upstream_port: int, delay_s: float, ready: threading.Event, box: dict[str, object]) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pump(client_r, up_w, delay_s), _pump(up_r, client_w, delay_s), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    box["port"] = server.sockets[0].getsockname()[1]
    box["stop"] = asyncio.Event()
    ready.set()
    async with server:
        await box["stop"].wait()  # type: ignore[attr-defined]


def _run(upstream_port: int, rtt_ms: float) -> None:
    """Serve until killed, printing the listening port first (for the parent)."""
    ready = threading.Event()
    box: dict[str, object] = {}

    def announce() -> None:
        ready.wait()
        print(box["port"], flush=True)

    threading.Thread(target=announce, daemon=True).start()
    asyncio.run(_serve(upstream_port, rtt_ms / 2000.0, ready, box))


@contextmanager
def latency_proxy(upstream_port: int, rtt_ms: float) -> Iterator[int]:
    """Yield the port of a proxy process; every byte arrives `rtt_ms / 2` late
    each way. A separate process, so the proxy never competes with the
    audited client for its interpreter lock."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.latency_proxy", str(upstream_port), str(rtt_ms)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError("latency proxy did not start")
        yield int(line)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    _run(int(sys.argv[1]), float(sys.argv[2]))
