"""Real worker processes (`userprov run ...`) for integration tests."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path


class WorkerProcess:
    def __init__(self, name: str, services: Sequence[str], env: Mapping[str, str], log_dir: Path,
                 command: Sequence[str] | None = None, ready_log: str = '"broker_connected"') -> None:
        """`command`: another `userprov` command than `run` of the services (`links`, say),
        ready once it logged `ready_log`."""
        self.name = name
        self.services = list(services)
        self._command = list(command) if command is not None else ["run", *self.services]
        self._ready_log = ready_log
        self._env = dict(env)
        self._log_path = log_dir / f"worker-{name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._lock = threading.RLock()
        self._new_line = threading.Condition(self._lock)  # notified by the pump at each line

    def start(self, ready_timeout: float = 30.0, wait_ready: bool = True) -> None:
        """Starts it; by default waits until it logged that it is ready (its broker connection, at INFO level)."""
        self._lines = []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "userprov", *self._command],
            env={**os.environ, **self._env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        threading.Thread(target=self._pump, args=(self._process,), daemon=True).start()
        if wait_ready:
            self.wait_for_log(self._ready_log, ready_timeout)

    def _pump(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        with self._log_path.open("ab") as log:
            for raw in process.stderr:
                log.write(raw)
                log.flush()
                with self._new_line:
                    self._lines.append(raw.decode("utf-8", "replace"))
                    self._new_line.notify_all()

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def count_log(self, needle: str) -> int:
        return sum(needle in line for line in self.lines())

    def wait_for_log(self, needle: str, timeout: float, at_least: int = 1) -> None:
        """Until `needle` is in `at_least` lines: each line is looked at once, as it comes."""
        deadline, seen, found = time.monotonic() + timeout, 0, 0
        with self._new_line:
            while True:
                lines = self._lines
                found, seen = found + sum(needle in line for line in lines[seen:]), len(lines)
                if found >= at_least:
                    return
                if self._process is not None and self._process.poll() is not None:
                    raise AssertionError(f"worker {self.name} exited with {self._process.returncode}: {lines[-20:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"worker {self.name}: no {needle} within {timeout}s: {lines[-20:]}")
                self._new_line.wait(0.05)  # a new line, or a look at whether the process is still there

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def rss_kib(self) -> int:
        """Resident memory of the process now (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise LookupError("no VmRSS")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait(10)

    def wait_for_exit(self, timeout: float) -> int:
        """The exit status of a process expected to exit by itself."""
        assert self._process is not None
        return self._process.wait(timeout)

    def terminate(self, timeout: float = 60.0) -> int:
        assert self._process is not None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        return self._process.wait(timeout)


@contextmanager
def restarted_with(processes: Sequence[WorkerProcess], **overrides: str) -> Iterator[None]:
    """Runs the processes with some settings changed (stopped cleanly, started again), then as before."""
    def restart(env: Mapping[str, str], process: WorkerProcess) -> None:
        if process.running:
            assert process.terminate() == 0, f"worker {process.name} did not exit cleanly on SIGTERM"
        process._env = dict(env)
        process.start()

    def restart_all(envs: Sequence[Mapping[str, str]]) -> None:  # each in a thread of its own: a restart mostly waits
        with ThreadPoolExecutor(len(processes)) as pool:
            for done in [pool.submit(restart, env, process) for env, process in zip(envs, processes, strict=True)]:
                done.result()

    before = [dict(p._env) for p in processes]
    restart_all([{**process._env, **overrides} for process in processes])
    try:
        yield
    finally:
        restart_all(before)
