"""Executing a snipe: the timed market buy at launch, and the position it opens (ExecuteSnipe,
execute.py). Its steps: the lease (lease.py) and the emergency stop (halt.py) it holds to, the wait
for the launch (launch.py), the send plan (plan.py) and the send loop (send.py), looking an order up
by its client order id (lookup.py), and recording the outcome (settle.py)."""

from application.use_cases.snipe.execute import ExecuteSnipe
from application.use_cases.snipe.outcome import SnipeOutcome, SnipeResult
from application.use_cases.snipe.plan import MAX_CLOCK_LEAD

__all__ = ["MAX_CLOCK_LEAD", "ExecuteSnipe", "SnipeOutcome", "SnipeResult"]
