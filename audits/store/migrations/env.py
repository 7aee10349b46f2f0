"""Alembic environment: migrations run on the connection the store hands over
(`config.attributes["connection"]`), inside the store's own transaction and
lock, so two processes opening a new database at once cannot both create it."""

from __future__ import annotations

from alembic import context

from audits.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
