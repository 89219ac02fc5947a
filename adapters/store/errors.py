"""The one error the store raises: it always names the database file and what went wrong."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The database cannot be used as asked (newer schema, wrong key, damaged data...)."""
