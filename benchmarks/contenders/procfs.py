"""Resident memory from /proc, sampled while a workload runs: this process's, and that of its
sagerun sender processes (``ru_maxrss`` of children is no use for them: a child started by fork
and exec reports the parent's size at the fork)."""

from __future__ import annotations

import os
import threading


class RssSampler:
    """The largest resident set of this process, and of its sender processes, sampled every 50 ms
    from /proc."""

    def __init__(self) -> None:
        self.peak = 0
        self.sender_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.05):
            with open("/proc/self/statm") as statm:
                self.peak = max(self.peak, int(statm.read().split()[1]) * page)
            for pid in sender_pids():
                try:
                    with open(f"/proc/{pid}/statm") as statm:
                        self.sender_peak = max(self.sender_peak, int(statm.read().split()[1]) * page)
                except OSError:  # it ended between the listing and the read
                    pass

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sender_pids() -> list[str]:
    """This process's children that are sagerun sender processes."""
    me, pids = str(os.getpid()), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if stat.read().rsplit(")", 1)[1].split()[1] == me and b"sagerun._ingest.sender" in cmdline.read():
                    pids.append(pid)
        except OSError:
            pass
    return pids
