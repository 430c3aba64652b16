"""Create the schema: `python init_db.py [--db PATH | --database-url URL] [--rebuild-projections]`.

Idempotent. `ML_CABINET_DATABASE_URL` stands for `--database-url`; without either, the SQLite
file `--db` (default ml_cabinet.db) is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from ledger import ledger_store_at
from ledger.__main__ import redacted


async def run(where: str, rebuild: bool, shown: str) -> None:
    store = ledger_store_at(where)
    await store.open()  # creates every table, trigger and index that is missing
    try:
        if rebuild:
            count = await store.rebuild_projections()
            print(f"rebuilt the projections from {count:,} events")
        print(f"schema ready in {shown}")
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", help="SQLite file (default: ml_cabinet.db)")
    where.add_argument("--database-url", help="postgresql://user:pass@host:port/db "
                       "(default: $ML_CABINET_DATABASE_URL)")
    parser.add_argument("--rebuild-projections", action="store_true",
                        help="empty the read models and fold the whole log into them again")
    args = parser.parse_args(argv)
    url = args.database_url or (None if args.db else os.environ.get("ML_CABINET_DATABASE_URL"))
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        parser.error("a database URL starts with postgresql://")
    target = url or args.db or "ml_cabinet.db"
    asyncio.run(run(target, args.rebuild_projections, redacted(target) if url else target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
