"""Open positions: the exit plan sells on each price tick (ManagePositions, manage.py) and a
person closes by hand (ClosePosition, close.py). Under them: the pair's rules an exit rounds to
(rules.py), placing an exit and writing off what the account lacks (exits.py), settling an exit
whose outcome was not known (settle.py), and learning a buy's fee after its fill was recorded
without it (fees.py)."""

from application.use_cases.positions.close import ClosePosition, PositionClosure, PositionNotClosed
from application.use_cases.positions.manage import ManagePositions
from application.use_cases.positions.outcome import ExitOutcome

__all__ = ["ClosePosition", "ExitOutcome", "ManagePositions", "PositionClosure", "PositionNotClosed"]
