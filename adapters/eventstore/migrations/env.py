"""Alembic environment: always run programmatically by adapters/eventstore/migrate.py,
which hands over an open connection (sync facade of the async engine)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
