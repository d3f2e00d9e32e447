"""Durable scheduling on SAQ over Redis: timed jobs (the Scheduler port) and periodic ones.

`job_queue(url, prefix)` opens the deployment's queue. A `SaqScheduler` on it schedules and
cancels jobs; a `JobRunner` on it, in each worker process, runs them with a handler per job
kind and runs the periodic jobs (calendar sync, symbol polling, reconciliation). Jobs live
in Redis: they outlive worker restarts, and each runs once however many workers there are.
Only this package imports saq. The in-process twin is adapters.memory.InMemoryScheduler.
"""

from __future__ import annotations

from adapters.scheduling.saq_runner import Handler, JobRunner, Periodic, cron_of
from adapters.scheduling.saq_scheduler import JobPolicy, JobState, SaqScheduler, job_key, job_queue

__all__ = [
    "Handler", "JobPolicy", "JobRunner", "JobState", "Periodic", "SaqScheduler", "cron_of", "job_key", "job_queue",
]
