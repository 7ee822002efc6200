"""Which backend a ``db`` value names: the one place that decides."""
from __future__ import annotations

import os
from typing import Any

from ..base._errors import StoreError
from ._base import Store
from ._postgres import PostgresStore
from ._sqlite import SQLiteStore

__all__ = ["open_store", "is_postgres_url"]


def is_postgres_url(db: Any) -> bool:
    return isinstance(db, str) and db.split("://", 1)[0].lower() in ("postgresql", "postgres")


def open_store(db: Any) -> Store:
    """``db``: a path, ``":memory:"`` or a ``postgresql://`` URL."""
    if is_postgres_url(db):
        return PostgresStore(db)
    if not isinstance(db, (str, os.PathLike)):
        raise StoreError(f"db must be a file path or a postgresql:// URL, not {type(db).__name__}")
    return SQLiteStore(db)
