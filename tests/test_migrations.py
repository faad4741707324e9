"""Migrations: Alembic upgrades a blank SQLite *and* a blank PostgreSQL database to the
schema of the SQLAlchemy models, downgrades to nothing and upgrades again.

Both databases are created here in every run, whatever ``LMS_TEST_DB`` says, so a revision
that only works on one of them (or that drifts from the models) fails the suite.
"""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import inspect

from conftest import PG_ADMIN_URL, RUN_ID

BACKENDS = ("sqlite", "postgresql")


def _create_pg(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def _drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def blank_database(tmp_path, test_env):
    """A factory of blank databases (``"sqlite"`` or ``"postgresql"``) → URL; every
    PostgreSQL database made is dropped afterwards."""
    made: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'blank-{uuid.uuid4().hex[:6]}.sqlite3'}"
        name = f"lms_test_{RUN_ID}_mig_{uuid.uuid4().hex[:6]}"
        url = _create_pg(name)
        made.append(name)
        return url

    yield make
    for name in made:
        _drop_pg(name)


def _app_for(url: str):
    from lms import create_app

    return create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": url})


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from lms import _migrations_dir

    return ScriptDirectory(str(_migrations_dir())).get_current_head()


def _current_revision(app) -> str | None:
    from alembic.migration import MigrationContext

    from lms.db import db

    with app.app_context(), db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _model_differences(app) -> list:
    """What Alembic's autogenerate would change to make the database match the models
    (tables, columns, types, nullability, indexes, unique constraints, foreign keys and
    server defaults). No noise filter was needed: both backends compare clean."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from lms.db import db

    with app.app_context(), db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, db.metadata)


def _table_names(app) -> set[str]:
    from lms.db import db

    with app.app_context():
        return set(inspect(db.engine).get_table_names())


def _schema(app) -> dict:
    """Tables → columns (name → nullable, primary key), foreign keys and indexes, in a form
    that does not depend on the backend's type names."""
    from lms.db import db

    out = {}
    with app.app_context():
        insp = inspect(db.engine)
        for table in sorted(insp.get_table_names()):
            if table == "alembic_version":
                continue
            pk = set(insp.get_pk_constraint(table)["constrained_columns"])
            out[table] = {
                "columns": {c["name"]: {"nullable": c["nullable"], "pk": c["name"] in pk,
                                        "python_type": _python_type(c["type"])}
                            for c in insp.get_columns(table)},
                "foreign_keys": sorted((tuple(fk["constrained_columns"]), fk["referred_table"],
                                        tuple(fk["referred_columns"])) for fk in insp.get_foreign_keys(table)),
                "indexes": sorted((ix["name"], tuple(ix["column_names"]), bool(ix["unique"]))
                                  for ix in insp.get_indexes(table)
                                  # PostgreSQL also lists each unique constraint's own index
                                  if not ix.get("duplicates_constraint")),
                "unique": sorted((u["name"], tuple(u["column_names"]))
                                 for u in insp.get_unique_constraints(table)),
            }
        db.engine.dispose()
    return out


def _python_type(sa_type):
    try:
        return sa_type.python_type.__name__
    except NotImplementedError:
        return type(sa_type).__name__


@pytest.mark.parametrize("backend", BACKENDS)
def test_blank_database_upgrades_downgrades_and_upgrades_to_the_models(backend, blank_database):
    """Round trip on a blank database: upgrade to head matches the models exactly,
    downgrade to base leaves no table of ours, and a second upgrade matches again."""
    from flask_migrate import downgrade, upgrade

    from lms.db import db

    app = _app_for(blank_database(backend))
    model_tables = set(db.metadata.tables)
    head = _head_revision()
    try:
        with app.app_context():
            upgrade()
        assert _current_revision(app) == head
        assert _model_differences(app) == []
        assert _table_names(app) == model_tables | {"alembic_version"}

        with app.app_context():
            downgrade(revision="base")
        assert _current_revision(app) is None
        assert _table_names(app) <= {"alembic_version"}

        with app.app_context():
            upgrade()
        assert _current_revision(app) == head
        assert _model_differences(app) == []
        assert _table_names(app) == model_tables | {"alembic_version"}
    finally:
        with app.app_context():
            db.engine.dispose()


def test_sqlite_and_postgresql_end_with_the_same_schema(blank_database):
    """The same revisions give the same tables, columns (nullability, primary keys, value
    types), foreign keys, indexes and unique constraints on SQLite and PostgreSQL."""
    from flask_migrate import upgrade

    schemas = {}
    for backend in BACKENDS:
        app = _app_for(blank_database(backend))
        with app.app_context():
            upgrade()
        schemas[backend] = _schema(app)

    sqlite, pg = schemas["sqlite"], schemas["postgresql"]
    # The one intended difference: PostgreSQL's month-partitioned evidence tables
    # (lms/audit/partitions.py) must carry the partition key in their primary key.
    from lms.audit.partitions import PARTITIONED

    for table, col in PARTITIONED.items():
        assert pg[table]["columns"][col]["pk"] is True and sqlite[table]["columns"][col]["pk"] is False, table
        pg[table]["columns"][col]["pk"] = False
    assert sqlite.keys() == pg.keys()
    assert "user_account" in sqlite and "access_log" in sqlite
    for table in sqlite:
        assert sqlite[table] == pg[table], table


def test_revisions_form_one_line_from_base_to_head():
    """One revision per change, in one line: a single base and a single head (parallel
    branches would need a merge revision), and every revision's parent is the one before."""
    from alembic.script import ScriptDirectory

    from lms import _migrations_dir

    script = ScriptDirectory(str(_migrations_dir()))
    assert len(script.get_bases()) == 1
    assert len(script.get_heads()) == 1
    chain = list(reversed(list(script.walk_revisions())))
    assert chain[0].down_revision is None
    for before, after in zip(chain, chain[1:]):
        assert after.down_revision == before.revision
