"""The worker's supervisor: runs the agents, restarts the ones that crash, stops cleanly.

Each agent ticks in its own task: one round of work (sync the calendar, look for ready
states, start the snipes that are due, ...), then a pause. After every tick the supervisor
publishes a heartbeat. A tick that raises, or is killed, is a crash: the supervisor alerts,
builds a fresh agent from its factory and starts it again after a backoff that doubles up
to a cap, so a broken dependency is not hammered.

Work an agent starts that must outlive its tick (a snipe waiting for its launch) is handed
to `spawn`: a stop lets that work finish, within the grace, before the worker exits; a
snipe interrupted at the grace is resolved by its client order id on the next start.

A shared agent (`AgentSpec.shared`) polls for the whole deployment: with several workers, its
rounds must run once per interval across all of them, not once in each. The supervisor does
not loop it; a job engine calls `round(name)` at each slot on one worker (the worker wires
SAQ's periodic jobs to it). The round is still this supervisor's: same tick timeout, crash
alert and fresh instance after a crash, and a heartbeat published under SHARED_WORKER, so
the deployment's status shows whether any worker ran the agent recently.

Two clocks: agents pause between ticks on the worker's clock, the one it trades on (a replay's
runs faster and on the scenario's day), so a replay polls as often in its own time as live
trading does. Everything about health is in wall time, on the wall clock: heartbeats and their
deadlines (read by other processes, which know nothing of the replay), tick timeouts, crash
backoffs (a broken dependency must not be hammered faster in a replay) and the stop grace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from application.alerts import Alert, NoNotifier, Notifier, Severity
from application.ports import AgentStatus, AgentStatusBoard, Clock, WallClock
from application.telemetry import NO_TELEMETRY, Telemetry

logger = logging.getLogger(__name__)


class Agent(Protocol):
    """A long-running worker role. `tick` does one round of work and says what it did."""

    async def tick(self) -> str: ...


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """How to run one agent: its name, how to build it (again, after a crash), its pause."""

    name: str
    build: Callable[[], Agent]
    interval: timedelta
    # Rounds run by a job engine once per interval across all workers (see `round`).
    shared: bool = False


# The worker id a shared agent's heartbeat is published under: any worker's round refreshes it.
SHARED_WORKER = "shared"


@dataclass(frozen=True, slots=True)
class SupervisorPolicy:
    """Wall-clock durations."""

    backoff_first: timedelta = timedelta(seconds=1)
    backoff_max: timedelta = timedelta(minutes=1)
    # Longest a stop waits for ticks and spawned work in flight before cancelling them.
    stop_grace: timedelta = timedelta(seconds=30)
    # A tick running longer than this is stuck: it is killed and counts as a crash.
    tick_timeout: timedelta = timedelta(minutes=5)


class _AgentKilled(Exception):
    pass


@dataclass(slots=True)
class _Running:
    spec: AgentSpec
    agent: Agent | None  # None: a shared agent to build afresh for its next round
    restarts: int = 0
    ticks: int = 0
    tick_task: asyncio.Task[str] | None = None
    killed: bool = False
    healthy: bool = False
    detail: str = "starting"


class Supervisor:
    def __init__(
        self,
        specs: list[AgentSpec],
        clock: Clock,
        board: AgentStatusBoard,
        notifier: Notifier | None = None,
        telemetry: Telemetry = NO_TELEMETRY,
        worker_id: str = "worker",
        policy: SupervisorPolicy = SupervisorPolicy(),
        *,
        wall_clock: WallClock,
        clock_speed: float = 1.0,
    ) -> None:
        """`clock` paces the agents (their intervals are in its time); `clock_speed` says how many
        times faster than `wall_clock` it runs (a replay's speed), so that the wall-time deadline
        of a next heartbeat counts an agent's pause at its wall-time length."""
        if not clock_speed > 0:
            raise ValueError(f"clock_speed must be positive, got {clock_speed}")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names must be unique, got {names}")
        self._specs = specs
        self._clock, self._board, self._telemetry = clock, board, telemetry
        self._wall, self._clock_speed = wall_clock, clock_speed
        self._notifier = notifier if notifier is not None else NoNotifier()
        self._worker_id, self._policy = worker_id, policy
        self._running: dict[str, _Running] = {}
        self._beats_failing: set[str] = set()
        self._stopping = asyncio.Event()
        self._spawned: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []

    # --- running ---------------------------------------------------------------------

    async def run(self) -> None:
        """Run every agent until `stop()`; then finish what is in flight (within the grace)."""
        self._loops = [
            asyncio.create_task(self._supervise(spec), name=f"agent-{spec.name}")
            for spec in self._specs
            if not spec.shared
        ]
        await self._stopping.wait()
        await self._drain()

    def stop(self) -> None:
        """Begin a clean stop: no new ticks; ticks and spawned work in flight may finish."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run work that outlives a tick (a snipe waiting for launch); a stop waits for it."""
        task = asyncio.create_task(work, name=name)
        self._spawned.add(task)
        task.add_done_callback(self._work_done)
        return task

    @property
    def in_flight(self) -> int:
        return len(self._spawned)

    def kill(self, name: str) -> bool:
        """Kill an agent's tick in flight, as a crash would (operators, tests). False when idle."""
        running = self._running.get(name)
        if running is None or running.tick_task is None or running.tick_task.done():
            return False
        running.killed = True
        running.tick_task.cancel()
        return True

    def status(self, name: str) -> AgentStatus | None:
        running = self._running.get(name)
        return None if running is None else self._status_of(running)

    async def round(self, name: str) -> str:
        """One round of shared agent `name`, on behalf of the whole deployment (a job engine calls
        this once per slot, on one worker). Raises what crashed the round, after the alert; the
        next round runs on a fresh instance. A stopping worker runs no round: the next slot
        goes to another worker, or to this one once restarted."""
        spec = next((s for s in self._specs if s.name == name and s.shared), None)
        if spec is None:
            raise KeyError(f"no shared agent named {name!r}")
        if self._stopping.is_set():
            return "worker stopping: round left to the next slot"
        running = self._running.get(name)
        if running is None:
            running = self._running[name] = _Running(spec, spec.build())
        elif running.agent is None:
            running.agent = spec.build()
        if running.tick_task is not None:
            return "previous round still running"
        try:
            running.detail = await self._tick(running)
        except Exception as exc:
            await self._crashed(running, exc)
            running.agent = None  # built afresh for the next round
            raise
        running.healthy = True
        running.ticks += 1
        await self._beat(running)
        return running.detail

    # --- one agent ---------------------------------------------------------------------

    async def _supervise(self, spec: AgentSpec) -> None:
        running = self._running[spec.name] = _Running(spec, spec.build())
        backoff = self._policy.backoff_first
        while not self._stopping.is_set():
            try:
                running.detail = await self._tick(running)
                running.healthy = True
                running.ticks += 1
                backoff = self._policy.backoff_first
                await self._beat(running)
                clock, pause = self._clock, spec.interval
            except Exception as exc:  # noqa: BLE001 - any failure of an agent is a crash to recover from
                await self._crashed(running, exc)
                clock, pause = self._wall, backoff
                backoff = min(backoff * 2, self._policy.backoff_max)
                try:
                    running.agent = spec.build()
                except Exception as build_exc:  # noqa: BLE001
                    logger.exception("agent %s could not be rebuilt", spec.name)
                    running.detail = f"cannot restart: {_describe(build_exc)}"
                    await self._beat(running)
            await self._pause(clock, pause)
        running.healthy = False
        running.detail = "stopped"
        await self._beat(running)

    async def _tick(self, running: _Running) -> str:
        with self._telemetry.span("agent.tick", agent=running.spec.name, worker=self._worker_id):
            running.killed = False
            if running.agent is None:  # not reached: a tick runs only for a started agent
                raise RuntimeError(f"agent {running.spec.name} ticked before it started")
            running.tick_task = asyncio.create_task(_call(running.agent.tick), name=f"tick-{running.spec.name}")
            try:
                # shield: a stop must not cancel a tick in flight; the tick itself may be killed.
                return await asyncio.wait_for(
                    asyncio.shield(running.tick_task), self._policy.tick_timeout.total_seconds()
                )
            except TimeoutError:
                running.tick_task.cancel()
                raise TimeoutError(f"tick took longer than {self._policy.tick_timeout}") from None
            except asyncio.CancelledError:
                if running.killed and running.tick_task.cancelled():
                    raise _AgentKilled("killed mid-tick") from None
                running.tick_task.cancel()  # whoever cancelled the round (a job's timeout) ends the tick too
                raise
            finally:
                running.tick_task = None

    async def _crashed(self, running: _Running, exc: BaseException) -> None:
        running.restarts += 1
        running.healthy = False
        running.detail = f"crashed: {_describe(exc)}"
        if not isinstance(exc, _AgentKilled):
            logger.error("agent %s crashed", running.spec.name, exc_info=exc)
        else:
            logger.error("agent %s was killed mid-tick", running.spec.name)
        self._telemetry.count("sniper_agent_restarts_total", agent=running.spec.name)
        await self._beat(running)
        await self._notifier.send(Alert(
            key=f"agent-crashed:{running.spec.name}",
            severity=Severity.CRITICAL,
            title=f"agent {running.spec.name} crashed; restarting",
            text=f"{running.detail} (restart {running.restarts}, worker {self._worker_id})",
            at=self._wall.now(),
        ))

    async def _beat(self, running: _Running) -> None:
        self._telemetry.gauge("sniper_agent_healthy", 1.0 if running.healthy else 0.0, agent=running.spec.name)
        name = running.spec.name
        try:
            await self._board.beat(self._status_of(running))
        except Exception as exc:  # noqa: BLE001 - a lost heartbeat must not stop the agent
            # One line when beats start failing, one when they are back: an outage of the status
            # board (Redis) would otherwise log a traceback per agent per beat.
            if name not in self._beats_failing:
                self._beats_failing.add(name)
                logger.warning("heartbeat of %s could not be published (%s: %s); quiet until it can",
                               name, type(exc).__name__, exc)
            return
        if name in self._beats_failing:
            self._beats_failing.discard(name)
            logger.warning("heartbeat of %s is published again", name)

    def _status_of(self, running: _Running) -> AgentStatus:
        now = self._wall.now()
        # Next beat: after the pause (the interval on the worker's clock, or at most the backoff
        # cap) and the next tick (at most its timeout), all in wall time.
        pause = max(running.spec.interval / self._clock_speed, self._policy.backoff_max)
        due = pause + self._policy.tick_timeout
        if running.spec.shared:
            return AgentStatus(
                name=running.spec.name, healthy=running.healthy, last_beat_at=now, restarts=running.restarts,
                detail=f"{running.detail[:450]} (round on {self._worker_id})", worker_id=SHARED_WORKER,
                stale_after=now + due,
            )
        return AgentStatus(
            name=running.spec.name, healthy=running.healthy, last_beat_at=now,
            restarts=running.restarts, detail=running.detail[:500], worker_id=self._worker_id,
            stale_after=now + due,
        )

    async def _pause(self, clock: Clock, delay: timedelta) -> None:
        """Sleep on `clock`, but wake at once for a stop."""
        if delay <= timedelta(0):
            await asyncio.sleep(0)
            return
        sleeper = asyncio.ensure_future(clock.sleep(delay))
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, stopper):
                if not t.done():
                    t.cancel()

    # --- stopping ----------------------------------------------------------------------

    async def _drain(self) -> None:
        grace = self._policy.stop_grace.total_seconds()
        pending = [*self._loops, *self._spawned]
        if pending:
            done, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                logger.warning("stop grace over: cancelling %s", task.get_name())
                task.cancel()
            for running in self._running.values():
                if running.tick_task is not None and not running.tick_task.done():
                    running.tick_task.cancel()  # shielded from its loop: cancel it by name
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        for task in self._loops:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.error("agent loop ended with an error", exc_info=task.exception())

    def _work_done(self, task: asyncio.Task[Any]) -> None:
        self._spawned.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            logger.error("work %s failed", task.get_name(), exc_info=exc)
            self._telemetry.count("sniper_work_failures_total", work=task.get_name().split(":", 1)[0])


async def _call(tick: Callable[[], Awaitable[str]]) -> str:
    return await tick()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
