"""Create the schema: `python init_db.py --db PATH [--rebuild-projections]`. Idempotent."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ledger import ledger_store


async def run(db: str, rebuild: bool) -> None:
    store = ledger_store(db)
    await store.open()  # creates every table, trigger and index that is missing
    try:
        if rebuild:
            count = await store.rebuild_projections()
            print(f"rebuilt the projections from {count:,} events")
        print(f"schema ready in {db}")
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="ml_cabinet.db", help="SQLite file")
    parser.add_argument("--rebuild-projections", action="store_true",
                        help="empty the read models and fold the whole log into them again")
    args = parser.parse_args(argv)
    asyncio.run(run(args.db, args.rebuild_projections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
