"""Ingest · system metrics (``Session(system_metrics=True)``): what the machine and the training
process tree use, sampled off the training loop and sent as metrics of the run under ``system/``
(``system/<host>/`` on each host of a SageMaker job of several).

They are sampled where the run's metrics are sent from: in the sender process, so that the
training process pays nothing, or on the run's event loop with the inline sender (each sample in a
worker thread). They go through a drain of their own, beside the run's: the parent's accounting
of what it handed the sender stays exact, and ``ingest_stats`` counts only what the user logged.

Names and units are MLflow's (``system/cpu_utilization_percentage``, megabytes of 10^6 bytes), so
that MLflow's UI shows them in its system-metrics tab; SageMaker takes them as they are (a metric
name is any 1 to 255 characters). Each point's step is the whole seconds since sampling began.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from typing import Any

import anyio
import anyio.to_thread

from .._model.answers import DeadLetter
from .._model.environment import job_hosts
from .._model.session import Session
from .._model.sink import MetricsSink
from .batcher import Batcher
from .queue import Item, PointQueue

logger = logging.getLogger("sagerun")

PREFIX = "system/"
_MB = 1e6


def close_share(session: Session) -> float:
    """Seconds of ``close_timeout`` the system metrics' drain may take at close (it closes first)."""
    return min(1.0, session.close_timeout * 0.05)


class SystemSampler:
    """Reads the machine's counters, and those of the process tree rooted at ``pid`` but for
    ``exclude`` (the sender process, whose cost is sagerun's, not the training's)."""

    def __init__(self, pid: int, exclude: int | None = None, folder: str = ".") -> None:
        import psutil  # Session checked that it is installed

        self._psutil = psutil
        self._root = psutil.Process(pid)
        self._exclude = exclude
        self._folder = folder
        self._processes: dict[int, Any] = {}  # kept, since cpu_percent() measures since the last call
        psutil.cpu_percent(None)
        self._disk_start = psutil.disk_io_counters()
        self._net_start = psutil.net_io_counters()
        self._gpus = _gpu_handles()
        self._tree()

    def sample(self) -> dict[str, float]:
        """One reading: metric names without the prefix, each to a finite number."""
        psutil = self._psutil
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(self._folder)
        values = {
            "cpu_utilization_percentage": psutil.cpu_percent(None),
            "system_memory_usage_megabytes": memory.used / _MB,
            "system_memory_usage_percentage": memory.percent,
            "disk_usage_percentage": disk.percent,
            "disk_usage_megabytes": disk.used / _MB,
            "disk_available_megabytes": disk.free / _MB,
        }
        io, net = psutil.disk_io_counters(), psutil.net_io_counters()
        if io is not None and self._disk_start is not None:  # None in some containers
            values["disk_read_megabytes"] = (io.read_bytes - self._disk_start.read_bytes) / _MB
            values["disk_write_megabytes"] = (io.write_bytes - self._disk_start.write_bytes) / _MB
        if net is not None and self._net_start is not None:
            values["network_receive_megabytes"] = (net.bytes_recv - self._net_start.bytes_recv) / _MB
            values["network_transmit_megabytes"] = (net.bytes_sent - self._net_start.bytes_sent) / _MB
        values.update(self._tree())
        for index, handle in enumerate(self._gpus):
            values.update(_gpu_sample(index, handle))
        return values

    def _tree(self) -> dict[str, float]:
        """RSS and CPU of the training process and its children; nothing once it has gone."""
        psutil = self._psutil
        try:
            members = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return {}
        rss = cpu = 0.0
        alive: dict[int, Any] = {}
        for process in members:
            if process.pid == self._exclude:
                continue
            process = alive[process.pid] = self._processes.get(process.pid, process)
            try:
                with process.oneshot():
                    rss += process.memory_info().rss
                    cpu += process.cpu_percent(None)  # 0.0 at a process's first reading
            except psutil.Error:  # it ended between the listing and the reading
                alive.pop(process.pid, None)
        self._processes = alive
        return {"process_tree_rss_megabytes": rss / _MB, "process_tree_cpu_utilization_percentage": cpu}


def _gpu_handles() -> list[Any]:
    """NVML's handle of each GPU, or none where nvidia-ml-py or the driver is missing."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except pynvml.NVMLError as exc:
        logger.debug("sagerun: no GPU metrics: %s", exc)
        return []


def _gpu_sample(index: int, handle: Any) -> dict[str, float]:
    """One GPU's readings; those it does not report (power, on some) are left out."""
    import pynvml

    prefix, values = f"gpu_{index}_", {}
    with contextlib.suppress(pynvml.NVMLError):
        values[prefix + "utilization_percentage"] = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    with contextlib.suppress(pynvml.NVMLError):
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        values[prefix + "memory_usage_megabytes"] = memory.used / _MB
        values[prefix + "memory_usage_percentage"] = 100.0 * memory.used / memory.total
    with contextlib.suppress(pynvml.NVMLError):
        values[prefix + "power_usage_watts"] = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000
    with contextlib.suppress(pynvml.NVMLError):
        values[prefix + "temperature_celsius"] = float(
            pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
    return values


class SystemMetrics:
    """``async with``: samples every ``session.system_metrics_interval`` seconds into a drain of
    its own over ``sink``; leaving stops sampling and flushes within ``close_share(session)``."""

    def __init__(self, sink: MetricsSink, trial_component_name: str, session: Session, dead_letter: DeadLetter,
                 pid: int, exclude: int | None = None) -> None:
        self._queue = PointQueue(session.queue_capacity, "block")
        self._batcher = Batcher(self._queue, sink, trial_component_name,
                                dataclasses.replace(session, close_timeout=close_share(session)),
                                dead_letter, report=False)
        self._interval = session.system_metrics_interval
        self._pid, self._exclude = pid, exclude
        hosts = job_hosts()  # each host of a job of several samples its own machine: system/<host>/…
        self._prefix = f"{PREFIX}{hosts.current}/" if hosts.several else PREFIX
        self._tasks: Any = None

    async def __aenter__(self) -> SystemMetrics:
        await self._batcher.__aenter__()
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        self._tasks.start_soon(self._sample_every_interval)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._tasks.cancel_scope.cancel()
        await self._tasks.__aexit__(None, None, None)
        await self._batcher.__aexit__(None, None, None)

    async def _sample_every_interval(self) -> None:
        try:
            sampler = await anyio.to_thread.run_sync(SystemSampler, self._pid, self._exclude, os.getcwd())
        except Exception:
            logger.exception("sagerun: system metrics could not be read; the run goes on without them")
            return
        began, failing = time.monotonic(), False
        while True:
            await anyio.sleep(self._interval)
            try:
                values = await anyio.to_thread.run_sync(sampler.sample)
            except Exception:
                if not failing:  # once, not every interval
                    logger.exception("sagerun: a reading of the system metrics failed; sampling goes on")
                failing = True
                continue
            failing = False
            step, now = int(time.monotonic() - began), time.time()
            points: list[Item] = [(self._prefix + name, float(value), step, now) for name, value in values.items()]
            await self._queue.put_items_async(points)
