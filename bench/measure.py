"""Shared measuring helpers for the benches (and the tests that measure a process)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc: how much CPU a server used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Exited:
    """How one child ended: its exit code, its own peak RSS and when it was reaped."""

    exit_code: int
    max_rss_kb: int
    ended_at: float  # time.monotonic()


def wait_with_usage(procs: Sequence[subprocess.Popen[bytes]], timeout: float) -> list[Exited]:
    """Wait for each of these children (and no other: a server started beside them
    is a child too), in their order. os.wait4 on each pid reaps it with its own
    resource usage, which RUSAGE_CHILDREN (the maximum over every child) cannot
    give. Past `timeout`, or on any exception (Ctrl-C included), the ones still
    running are killed; then TimeoutError, or the exception."""
    deadline = time.monotonic() + timeout
    exited: dict[int, Exited] = {}
    try:
        while len(exited) < len(procs):
            for proc in procs:
                if proc.pid in exited:
                    continue
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    exited[pid] = Exited(proc.returncode, usage.ru_maxrss, time.monotonic())
            if len(exited) < len(procs):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{len(procs) - len(exited)} process(es) did not finish within {timeout:g} s")
                time.sleep(0.05)
    except BaseException:
        for proc in procs:
            if proc.pid not in exited:
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait()
        raise
    return [exited[proc.pid] for proc in procs]
