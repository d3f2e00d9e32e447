"""Read models of the trade history: checkpointed SQL projections and their in-memory twin."""

from adapters.projections.memory import InMemoryReadModels
from adapters.projections.sql import PROJECTION, SqlProjector, SqlReadModels, run_projector

__all__ = ["PROJECTION", "InMemoryReadModels", "SqlProjector", "SqlReadModels", "run_projector"]
