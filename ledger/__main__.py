"""`python -m ledger audit --db PATH | --database-url URL`: exit 0 when the log and its
projections hold. `ML_CABINET_DATABASE_URL` stands for `--database-url`."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys

from ledger.audit import audit, parse_anchor


def redacted(url: str) -> str:
    """The URL without its password, fit for an error message."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("audit", help="verify the hash chain and replay the log")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--db", help="path of the SQLite file")
    where.add_argument("--database-url", help="postgresql://user:pass@host:port/db "
                       "(default: $ML_CABINET_DATABASE_URL)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--anchor", action="append", default=[], type=parse_anchor,
                     metavar="POSITION:HASH",
                     help="a head printed by an earlier audit; it must still be in the log")
    run.add_argument("--jobs", type=int, default=None, metavar="N",
                     help="processes for the hashes and the replay (default: the cores)")
    args = parser.parse_args(argv)
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        parser.error("--jobs is a number of processes from 1 to 64")
    url = args.database_url or (None if args.db else os.environ.get("ML_CABINET_DATABASE_URL"))
    if url is None and args.db is None:
        parser.error("give --db PATH or --database-url URL (or ML_CABINET_DATABASE_URL)")
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        parser.error("a database URL starts with postgresql://")
    target: str = url or args.db
    shown = redacted(target) if url else target
    try:
        report = asyncio.run(audit(target, show_progress=not args.quiet, anchors=args.anchor,
                                   jobs=args.jobs))
    except Exception as exc:  # an unreadable file or database is a failed audit, said plainly
        print(f"AUDIT FAILED: cannot read {shown}: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
