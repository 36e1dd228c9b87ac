"""Interactive work in hand, told across the processes of a host: the shared file, and the bulk
lane's holds that it steers."""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from userprov.runtime import priority as priority_module
from userprov.runtime.host_priority import SLOTS, HostPriority, path_for
from userprov.runtime.priority import HOST_LINGER_SECONDS, HOST_MAX_HOLD_SECONDS, Priority

DATABASE = "postgresql://u:secret@db.example:5432/userprov"


def _interactive_process(path: str, commands: Connection) -> None:
    """Another process: marks its slot busy or clear as told, or dies holding it."""
    host = HostPriority(Path(path), os.getpid())
    while True:
        command = commands.recv()
        if command == "busy":
            host.busy()
        elif command == "clear":
            host.clear()
        elif command == "die":
            os._exit(1)
        commands.send("done")


@pytest.fixture
def other_process(tmp_path: Path):  # noqa: ANN201
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    path = path_for(tmp_path, DATABASE)
    process = context.Process(target=_interactive_process, args=(str(path), theirs), daemon=True)
    process.start()

    def tell(command: str) -> None:
        ours.send(command)
        if command != "die":
            assert ours.poll(30), "the other process did not answer"
            ours.recv()
        else:
            process.join(10)

    yield tell
    process.kill()
    process.join(10)


class TestHostPriority:
    def test_a_bulk_process_hears_an_interactive_process_of_the_host(self, tmp_path: Path, other_process) -> None:  # noqa: ANN001
        bulk = HostPriority.open(tmp_path, DATABASE)
        assert bulk is not None
        assert not bulk.interactive_elsewhere()
        other_process("busy")
        assert bulk.interactive_elsewhere()
        other_process("clear")
        assert not bulk.interactive_elsewhere()

    def test_a_process_that_died_with_work_in_hand_is_heard_no_longer_after_a_while(self, tmp_path: Path, other_process) -> None:  # noqa: ANN001
        other_process("busy")
        other_process("die")
        assert HostPriority(path_for(tmp_path, DATABASE), os.getpid(), stale_seconds=5).interactive_elsewhere()
        assert not HostPriority(path_for(tmp_path, DATABASE), os.getpid(), stale_seconds=0.001).interactive_elsewhere()

    def test_one_file_per_deployment_named_without_its_credentials(self, tmp_path: Path) -> None:
        path = path_for(tmp_path, DATABASE)
        assert path == path_for(tmp_path, "postgresql://other:password@db.example/userprov")
        assert path != path_for(tmp_path, "postgresql://u@db.example/userprov_test")
        assert "secret" not in path.name and "db.example" not in path.name

    def test_garbage_in_the_file_is_not_taken_for_work_in_hand(self, tmp_path: Path) -> None:
        host = HostPriority(path_for(tmp_path, DATABASE), 1)
        for value in (float("nan"), float("inf"), -1.0, time.time() + 3600, 1e300):
            host._slots[2] = value  # another program's bytes, or a torn write
            assert not host.interactive_elsewhere(), value
        assert len(host._slots) == SLOTS

    def test_a_directory_that_cannot_hold_the_file_leaves_lanes_working_alone(self, tmp_path: Path) -> None:
        assert HostPriority.open(tmp_path / "missing", DATABASE) is None

    def test_a_link_planted_at_the_files_name_is_not_followed(self, tmp_path: Path) -> None:
        victim = tmp_path / "victim"
        victim.write_bytes(b"keep")
        path_for(tmp_path, DATABASE).symlink_to(victim)
        assert HostPriority.open(tmp_path, DATABASE) is None
        assert victim.read_bytes() == b"keep"


class TestPriorityAcrossProcesses:
    async def test_an_interactive_process_says_busy_at_once_and_clear_a_moment_after(self, tmp_path: Path) -> None:
        told, heard = HostPriority(path_for(tmp_path, DATABASE), 1), HostPriority(path_for(tmp_path, DATABASE), 2)
        interactive = Priority()
        interactive.tell_host(told)
        with interactive.interactive():
            assert heard.interactive_elsewhere()
        assert heard.interactive_elsewhere(), "the next step of its small work follows at once"
        with interactive.interactive():  # and does, within the linger: still busy, never cleared between
            assert heard.interactive_elsewhere()
        await asyncio.sleep(HOST_LINGER_SECONDS * 3)
        assert not heard.interactive_elsewhere()

    async def test_a_stream_of_work_in_hand_stays_heard_beyond_the_stale_bound(self, tmp_path: Path) -> None:
        """Small adds that overlap keep work in hand for longer than STALE_SECONDS: each one
        renews the mark, so the bulk lane never takes the stream for a dead process."""
        told = HostPriority(path_for(tmp_path, DATABASE), 1)
        heard = HostPriority(path_for(tmp_path, DATABASE), 2, stale_seconds=0.05)
        interactive = Priority()
        interactive.tell_host(told)
        interactive.announce()
        for _ in range(4):
            await asyncio.sleep(0.03)
            interactive.announce()  # the next add arrives before the last is done
            interactive.done()
            assert heard.interactive_elsewhere()
        interactive.done()

    async def test_a_bulk_step_holds_while_an_interactive_process_is_busy_and_no_longer(self, tmp_path: Path) -> None:
        told, heard = HostPriority(path_for(tmp_path, DATABASE), 1), HostPriority(path_for(tmp_path, DATABASE), 2)
        bulk = Priority()
        bulk.hear_host(heard)
        loop = asyncio.get_running_loop()

        started = loop.time()
        await bulk.bulk_step()
        assert loop.time() - started < 0.005, "nothing in hand: no hold"

        told.busy()
        assert bulk.busy
        started = loop.time()
        await bulk.bulk_step()
        assert HOST_MAX_HOLD_SECONDS <= loop.time() - started < HOST_MAX_HOLD_SECONDS + 0.05, "held, and never for longer"

        started = loop.time()
        loop.call_later(0.01, told.clear)
        await bulk.bulk_step()
        assert 0.01 <= loop.time() - started < HOST_MAX_HOLD_SECONDS, "goes on once the interactive process is clear"

    async def test_held_sends_start_once_clear_or_at_the_longest_hold(self, tmp_path: Path) -> None:
        told, heard = HostPriority(path_for(tmp_path, DATABASE), 1), HostPriority(path_for(tmp_path, DATABASE), 2)
        bulk = Priority()
        bulk.hear_host(heard)
        loop = asyncio.get_running_loop()
        started: list[float] = []

        told.busy()
        begun = loop.time()
        bulk.when_clear(lambda: started.append(loop.time() - begun))
        await asyncio.sleep(HOST_MAX_HOLD_SECONDS + 0.05)
        assert started and HOST_MAX_HOLD_SECONDS <= started[0] < HOST_MAX_HOLD_SECONDS + 0.04

        begun = loop.time()
        bulk.when_clear(lambda: started.append(loop.time() - begun))
        loop.call_later(0.01, told.clear)
        await asyncio.sleep(HOST_MAX_HOLD_SECONDS)
        assert len(started) == 2 and 0.01 <= started[1] < HOST_MAX_HOLD_SECONDS

    def test_the_workers_priority_hears_no_host_unless_in_lanes(self) -> None:
        assert priority_module.priority._hears is None and priority_module.priority._tells is None
