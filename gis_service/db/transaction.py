"""The one way code writes: a transaction of its own on a connection, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """Run the block in one transaction that commits at its end and rolls back on an error.

    SQLAlchemy begins a transaction on a connection's first statement; a request's reads so
    far (the caller's principal, a lookup) only read, so that transaction is committed
    first and the write gets a fresh one, with a snapshot taken after those reads.
    """
    if conn.in_transaction():
        conn.commit()
    with conn.begin():
        yield conn
