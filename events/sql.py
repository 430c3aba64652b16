"""The SQL seam: what projections, control-plane tables and queries may ask of a database."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol

Params = tuple[Any, ...] | dict[str, Any]


class SqlDatabase(Protocol):
    """What projections, control-plane tables and queries may do with a connection.

    SQL is written once with `?` placeholders; each store's adapter runs it in its dialect
    ("sqlite" or "postgresql"). Rows come back as dicts.
    """

    dialect: str

    @property
    def in_transaction(self) -> bool: ...

    async def execute(self, query: str, params: Params = ()) -> None: ...

    async def executescript(self, script: str) -> None: ...

    async def fetchall(self, query: str, params: Params = ()) -> list[dict[str, Any]]: ...

    async def fetchone(self, query: str, params: Params = ()) -> dict[str, Any] | None: ...


_WORD = re.compile(r"[A-Za-z_]\w*")


@lru_cache(maxsize=1024)
def read_words(query: str) -> frozenset[str]:
    """Every name a statement mentions, lower-cased: the tables it may read among them."""
    return frozenset(word.lower() for word in _WORD.findall(query))
