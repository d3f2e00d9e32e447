"""The supervisor: heartbeats, crash → alert + fresh agent after a backoff, kill mid-tick,
a stop that lets ticks and spawned work finish."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import AcceleratedClock, ManualClock, SystemClock
from adapters.memory import InMemoryAgentStatusBoard
from application.alerts import Alert, Severity
from application.supervisor import SHARED_WORKER, AgentSpec, Supervisor, SupervisorPolicy

FAST = SupervisorPolicy(backoff_first=timedelta(milliseconds=20), backoff_max=timedelta(milliseconds=80),
                        stop_grace=timedelta(seconds=5), tick_timeout=timedelta(seconds=5))


class Alerts:
    def __init__(self) -> None:
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.sent.append(alert)


class Counting:
    """Counts ticks per instance; instance n crashes on its tick number `crash_on[n]`."""

    built = 0

    def __init__(self, log: list[str], crash_on: dict[int, int] | None = None) -> None:
        Counting.built += 1
        self.instance = Counting.built
        self.ticks = 0
        self.log = log
        self.crash_on = crash_on or {}

    async def tick(self) -> str:
        self.ticks += 1
        self.log.append(f"{self.instance}.{self.ticks}")
        if self.crash_on.get(self.instance) == self.ticks:
            raise RuntimeError(f"boom in {self.instance}")
        return f"tick {self.ticks}"


async def wait_for(condition, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    Counting.built = 0


async def test_heartbeats_say_what_each_tick_did() -> None:
    board, log = InMemoryAgentStatusBoard(), []
    sup = Supervisor([AgentSpec("calendar", lambda: Counting(log), timedelta(milliseconds=5))],
                     SystemClock(), board, policy=FAST, worker_id="w1", wall_clock=SystemClock())
    run = asyncio.create_task(sup.run())
    await wait_for(lambda: len(log) >= 3)
    [status] = await board.statuses()
    assert status.name == "calendar" and status.worker_id == "w1"
    assert status.healthy and status.restarts == 0 and status.detail.startswith("tick ")
    sup.stop()
    await asyncio.wait_for(run, 5)
    [status] = await board.statuses()
    assert not status.healthy and status.detail == "stopped"


async def test_heartbeats_are_in_wall_time_whatever_clock_the_agents_run_on() -> None:
    """A replay's clock is on the scenario's day and runs at its own speed (here half the wall
    clock's); `sniper agents` and the API read heartbeats on the wall clock, so that is where
    they are stamped, with a deadline that counts the pause at its wall-time length."""
    board, log = InMemoryAgentStatusBoard(), []
    replay = AcceleratedClock(datetime(2001, 1, 1, tzinfo=UTC), speed=0.5)
    wall = ManualClock(datetime(2040, 6, 1, tzinfo=UTC))
    sup = Supervisor([AgentSpec("calendar", lambda: Counting(log), timedelta(minutes=10))], replay, board,
                     policy=FAST, wall_clock=wall, clock_speed=0.5)
    run = asyncio.create_task(sup.run())
    await wait_for(lambda: len(log) >= 1)
    [status] = await board.statuses()
    assert status.last_beat_at == wall.now()
    # The next beat: after 10 min of replay time, 20 min of wall time, and the tick's timeout.
    assert status.stale_after == wall.now() + timedelta(minutes=20) + FAST.tick_timeout
    assert status.is_current(wall.now() + timedelta(minutes=20))
    assert not status.is_current(wall.now() + timedelta(minutes=21))
    sup.stop()
    await asyncio.wait_for(run, 5)


class Frozen:
    """A clock that never moves (a replay held still): whoever sleeps on it sleeps for good."""

    def __init__(self) -> None:
        self.sleeps: list[timedelta] = []

    def now(self) -> datetime:
        return datetime(2001, 1, 1, tzinfo=UTC)

    async def sleep(self, delay: timedelta) -> None:
        self.sleeps.append(delay)
        await asyncio.Event().wait()

    async def sleep_until(self, moment: datetime) -> None:
        await asyncio.Event().wait()


async def test_a_crash_backoff_is_wall_time_the_interval_the_agents_clock() -> None:
    log, alerts, frozen = [], Alerts(), Frozen()
    started = datetime.now(UTC)
    sup = Supervisor([AgentSpec("calendar", lambda: Counting(log, {1: 1}), timedelta(minutes=10))], frozen,
                     InMemoryAgentStatusBoard(), alerts, policy=FAST, wall_clock=SystemClock())
    run = asyncio.create_task(sup.run())
    await wait_for(lambda: frozen.sleeps)
    # The crash's backoff passed on the wall clock; the pause after the good tick is on the agents' clock.
    assert log == ["1.1", "2.1"] and frozen.sleeps == [timedelta(minutes=10)]
    assert started <= alerts.sent[0].at <= datetime.now(UTC)  # the crash alert too is in wall time
    sup.stop()
    await asyncio.wait_for(run, 5)


async def test_a_crashed_agent_alerts_and_runs_again_as_a_fresh_instance() -> None:
    board, log, alerts = InMemoryAgentStatusBoard(), [], Alerts()
    sup = Supervisor([AgentSpec("pattern", lambda: Counting(log, {1: 2}), timedelta(milliseconds=5))],
                     SystemClock(), board, alerts, policy=FAST, wall_clock=SystemClock())
    run = asyncio.create_task(sup.run())
    await wait_for(lambda: any(entry.startswith("2.") for entry in log))
    # Instance 1 crashed on its second tick; instance 2 (a rebuild) ticks after the backoff.
    assert log[:3] == ["1.1", "1.2", "2.1"]
    [alert] = alerts.sent
    assert alert.key == "agent-crashed:pattern" and alert.severity is Severity.CRITICAL
    assert "RuntimeError: boom in 1" in alert.text
    await wait_for(lambda: sup.status("pattern").healthy)
    assert sup.status("pattern").restarts == 1
    sup.stop()
    await asyncio.wait_for(run, 5)


async def test_killed_mid_tick_is_restarted_and_alerted() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    instances: list[int] = []

    class Blocking:
        def __init__(self) -> None:
            instances.append(len(instances) + 1)
            self.n = len(instances)

        async def tick(self) -> str:
            if self.n == 1:
                started.set()
                await release.wait()  # never released: it is killed in here
            return f"instance {self.n}"

    board, alerts = InMemoryAgentStatusBoard(), Alerts()
    sup = Supervisor([AgentSpec("calendar", Blocking, timedelta(milliseconds=5))], SystemClock(), board, alerts,
                     policy=FAST, wall_clock=SystemClock())
    run = asyncio.create_task(sup.run())
    await asyncio.wait_for(started.wait(), 5)
    assert sup.kill("calendar") is True
    await wait_for(lambda: (s := sup.status("calendar")) is not None and s.healthy and s.detail == "instance 2")
    assert [a.key for a in alerts.sent] == ["agent-crashed:calendar"]
    assert "killed mid-tick" in alerts.sent[0].text
    assert sup.status("calendar").restarts == 1
    sup.stop()
    await asyncio.wait_for(run, 5)


async def test_backoff_doubles_up_to_its_cap_while_the_agent_keeps_crashing() -> None:
    times: list[float] = []
    loop = asyncio.get_running_loop()

    class Broken:
        async def tick(self) -> str:
            times.append(loop.time())
            raise ConnectionError("exchange down")

    sup = Supervisor([AgentSpec("calendar", Broken, timedelta(milliseconds=1))], SystemClock(),
                     InMemoryAgentStatusBoard(), Alerts(), policy=FAST, wall_clock=SystemClock())
    run = asyncio.create_task(sup.run())
    await wait_for(lambda: len(times) >= 6)
    sup.stop()
    await asyncio.wait_for(run, 5)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.018 and gaps[1] >= 0.038 and gaps[2] >= 0.078  # 20, 40, 80 ms
    assert all(g < 0.5 for g in gaps[3:])  # capped at 80 ms (generous margin for a loaded machine)


async def test_stop_lets_a_tick_and_spawned_work_in_flight_finish() -> None:
    in_tick, finished = asyncio.Event(), []
    sup: Supervisor

    class Slow:
        async def tick(self) -> str:
            if not in_tick.is_set():
                sup.spawn(self.work(), "snipe:t1")
                in_tick.set()
                await asyncio.sleep(0.1)
                finished.append("tick")
            return "ok"

        async def work(self) -> None:
            await asyncio.sleep(0.3)
            finished.append("snipe")

    sup = Supervisor([AgentSpec("strategy", Slow, timedelta(milliseconds=5))], SystemClock(),
                     InMemoryAgentStatusBoard(), policy=FAST, wall_clock=SystemClock())
    run = asyncio.create_task(sup.run())
    await asyncio.wait_for(in_tick.wait(), 5)
    sup.stop()
    await asyncio.wait_for(run, 5)
    assert finished == ["tick", "snipe"]
    assert sup.in_flight == 0


async def test_work_past_the_grace_is_cancelled() -> None:
    cancelled = asyncio.Event()
    sup: Supervisor

    class Stuck:
        spawned = False

        async def tick(self) -> str:
            if not Stuck.spawned:
                Stuck.spawned = True
                sup.spawn(self.forever(), "snipe:stuck")
            return "ok"

        async def forever(self) -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    policy = SupervisorPolicy(stop_grace=timedelta(milliseconds=100))
    sup = Supervisor([AgentSpec("strategy", Stuck, timedelta(milliseconds=5))], SystemClock(),
                     InMemoryAgentStatusBoard(), policy=policy, wall_clock=SystemClock())
    run = asyncio.create_task(sup.run())
    await wait_for(lambda: Stuck.spawned)
    sup.stop()
    await asyncio.wait_for(run, 5)
    assert cancelled.is_set()


def test_agent_names_are_unique() -> None:
    spec = AgentSpec("calendar", lambda: Counting([]), timedelta(seconds=1))
    with pytest.raises(ValueError, match="unique"):
        Supervisor([spec, spec], SystemClock(), InMemoryAgentStatusBoard(), wall_clock=SystemClock())


# --- shared agents: rounds called by the job engine, once per slot across workers ----------

class Slow:
    def __init__(self, started: asyncio.Event, finished: list[str]) -> None:
        self.started, self.finished = started, finished

    async def tick(self) -> str:
        self.started.set()
        try:
            await asyncio.sleep(30)
        finally:
            self.finished.append("ended")
        return "never"


async def test_a_shared_agent_is_not_looped_and_its_round_beats_for_the_deployment() -> None:
    board, log = InMemoryAgentStatusBoard(), []
    sup = Supervisor([AgentSpec("own", lambda: Counting(log), timedelta(milliseconds=5)),
                      AgentSpec("calendar", lambda: Counting(log), timedelta(seconds=1), shared=True)],
                     SystemClock(), board, policy=FAST, worker_id="w1", wall_clock=SystemClock())
    run = asyncio.create_task(sup.run())
    await wait_for(lambda: len(log) >= 5)
    assert all(entry.startswith("1.") for entry in log)  # only the looped agent (instance 1) ticked
    assert {s.name for s in await board.statuses()} == {"own"}

    assert await sup.round("calendar") == "tick 1"
    assert await sup.round("calendar") == "tick 2"
    shared = [s for s in await board.statuses() if s.name == "calendar"]
    assert [(s.worker_id, s.healthy) for s in shared] == [(SHARED_WORKER, True)]
    assert shared[0].detail == "tick 2 (round on w1)"
    assert shared[0].stale_after is not None and shared[0].stale_after > shared[0].last_beat_at

    sup.stop()
    await asyncio.wait_for(run, 5)
    # A stopping worker leaves its slots to the others, and does not mark the shared agent stopped.
    assert await sup.round("calendar") == "worker stopping: round left to the next slot"
    [after] = [s for s in await board.statuses() if s.name == "calendar"]
    assert after.healthy and after.detail == "tick 2 (round on w1)"
    with pytest.raises(KeyError):
        await sup.round("own")  # a looped agent has no rounds to call


async def test_a_crashed_round_alerts_raises_and_the_next_round_is_a_fresh_instance() -> None:
    board, log, alerts = InMemoryAgentStatusBoard(), [], Alerts()
    sup = Supervisor([AgentSpec("reconciliation", lambda: Counting(log, {1: 2}), timedelta(seconds=1), shared=True)],
                     SystemClock(), board, alerts, policy=FAST, worker_id="w2", wall_clock=SystemClock())
    assert await sup.round("reconciliation") == "tick 1"
    with pytest.raises(RuntimeError, match="boom in 1"):
        await sup.round("reconciliation")
    [status] = await board.statuses()
    assert not status.healthy and status.restarts == 1 and status.worker_id == SHARED_WORKER
    assert [a.key for a in alerts.sent] == ["agent-crashed:reconciliation"]
    assert alerts.sent[0].severity == Severity.CRITICAL
    assert await sup.round("reconciliation") == "tick 1"  # instance 2, from the factory
    assert log == ["1.1", "1.2", "2.1"]
    [status] = await board.statuses()
    assert status.healthy


async def test_a_cancelled_round_ends_its_tick() -> None:
    started, finished = asyncio.Event(), []
    sup = Supervisor([AgentSpec("pattern", lambda: Slow(started, finished), timedelta(seconds=1), shared=True)],
                     SystemClock(), InMemoryAgentStatusBoard(), policy=FAST, wall_clock=SystemClock())
    job = asyncio.create_task(sup.round("pattern"))  # as SAQ runs it; its timeout cancels the job
    await asyncio.wait_for(started.wait(), 5)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    await wait_for(lambda: finished == ["ended"])


class FlakyBoard(InMemoryAgentStatusBoard):
    """A status board that cannot be reached while `down` is set (Redis in an outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.refused = 0

    async def beat(self, status) -> None:  # noqa: ANN001
        if self.down:
            self.refused += 1
            raise ConnectionError("Redis is down")
        await super().beat(status)


async def test_an_unreachable_status_board_is_logged_once_not_per_beat(caplog: pytest.LogCaptureFixture) -> None:
    """Seen in a 5 s Redis outage: a traceback per agent per beat filled the worker's stderr."""
    board, log = FlakyBoard(), []
    sup = Supervisor([AgentSpec("calendar", lambda: Counting(log), timedelta(milliseconds=5))],
                     SystemClock(), board, policy=FAST, worker_id="w1", wall_clock=SystemClock())
    with caplog.at_level("WARNING", logger="application.supervisor"):
        run = asyncio.create_task(sup.run())
        await wait_for(lambda: board.refused >= 5)
        board.down = False
        await wait_for(lambda: len(log) >= 8 and board.refused >= 5)
        await wait_for(lambda: any("published again" in r.getMessage() for r in caplog.records))
        sup.stop()
        await asyncio.wait_for(run, 5)
    lines = [r for r in caplog.records if "heartbeat of calendar" in r.getMessage()]
    assert [r.getMessage().split(" (")[0].split(" is ")[0] for r in lines] == [
        "heartbeat of calendar could not be published", "heartbeat of calendar"]
    assert "ConnectionError: Redis is down" in lines[0].getMessage() and lines[0].exc_info is None
    [status] = await board.statuses()
    assert status.name == "calendar"
