"""The SQLAlchemy handle and column types shared by every package's models."""
from __future__ import annotations

import functools
from datetime import datetime, timezone

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, LargeBinary, MetaData, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


class UTCDateTime(TypeDecorator):
    """Stores UTC as a naive timestamp on every database; returns aware UTC datetimes.

    Naive datetimes are refused on the way in: every time in this system is aware.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # SQLite raw text (e.g. from a core query)
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc)


class EncryptedText(TypeDecorator):
    """Personal data encrypted at rest with Fernet (AES-128-CBC + HMAC) — REC-4.

    The key comes from ``LMS_DATA_KEY`` (see ``lms.crypto``). Values are str in Python
    and opaque tokens in the database, so they cannot be searched; keep a separate
    searchable column (e.g. a username) where lookups are needed.
    """

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        from lms.crypto import encrypt

        return encrypt(str(value))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        from lms.crypto import decrypt

        return decrypt(bytes(value))


def short_string(length: int = 255) -> String:
    return String(length)


def commit_keeping_loaded() -> None:
    """Commit without expiring what the session has loaded, so reading those objects
    afterwards does not query the database again (``expire_on_commit`` for this one
    commit only). Used for the access-log commit that precedes every authenticated view:
    the view then uses the user and session rows loaded at the start of its request."""
    session = db.session()
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = previous


def is_sqlite() -> bool:
    return db.session.get_bind().dialect.name == "sqlite"


def lock_row(model, row_id: int):
    """The row of ``model`` with id ``row_id`` locked for this transaction (None if absent).
    PostgreSQL: ``SELECT … FOR UPDATE``. SQLite ignores FOR UPDATE, so a no-op UPDATE first
    takes the database's write lock (a second writer waits for this transaction)."""
    from sqlalchemy import select, update

    if is_sqlite():
        db.session.execute(update(model).where(model.id == row_id).values(id=model.id)
                           .execution_options(synchronize_session=False))
    return db.session.scalar(select(model).where(model.id == row_id).with_for_update()
                             .execution_options(populate_existing=True))


def advisory_lock_number(key: str) -> int:
    """The PostgreSQL advisory-lock number of ``key`` (the first 8 bytes of its SHA-256)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


@functools.cache
def _advisory_statement(count: int, shared: bool):
    from sqlalchemy import text

    fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    # One round trip for every key; PostgreSQL evaluates a select list left to right, so
    # the locks are taken in the order given (sorted by the caller).
    return text("SELECT " + ", ".join(f"{fn}(:k{i})" for i in range(count)))


def advisory_lock(*keys: str, shared: bool = False) -> None:
    """Serialise transactions on the named keys until this transaction ends, on every web
    process. PostgreSQL: ``pg_advisory_xact_lock`` per key (sorted, so two transactions
    never wait on each other in opposite orders; all in one statement); ``shared`` takes
    the shared form, which only an exclusive holder of the key waits for. SQLite: the
    database's write lock, taken by a write to the ``alembic_version`` row (SQLite has one
    writer at a time), shared or not."""
    from sqlalchemy import text

    if is_sqlite():
        db.session.execute(text("UPDATE alembic_version SET version_num = version_num"))
        return
    numbers = [advisory_lock_number(k) for k in sorted(set(keys))]
    if numbers:
        db.session.execute(_advisory_statement(len(numbers), shared),
                           {f"k{i}": n for i, n in enumerate(numbers)})
