"""Alembic environment: the URL comes from the caller (hwlat serve, tests) or settings."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from latency_service.config import ServiceSettings
from latency_service.db import make_engine, normalise_url
from latency_service.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    return normalise_url(config.attributes.get("url") or ServiceSettings().database_url)


def run_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(database_url())
    with engine.connect() as connection:
        # batch mode lets later revisions ALTER tables on SQLite too
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
