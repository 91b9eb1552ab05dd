"""Alembic environment, driven from code only (`huxley_storage.migrate`).

The caller hands over an open connection in `config.attributes["connection"]`;
there is no alembic.ini and no URL here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from huxley_storage.tables import metadata

# Any constant: it only has to be the same for every storage instance.
MIGRATION_LOCK_ID = 0x68757879


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two storage instances starting together must not both migrate.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


run()
