"""`python -m ledger audit --db PATH`: exit 0 when the log and its projections hold."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ledger.audit import audit, parse_anchor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("audit", help="verify the hash chain and replay the log")
    run.add_argument("--db", required=True, help="path of the SQLite file")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--anchor", action="append", default=[], type=parse_anchor,
                     metavar="POSITION:HASH",
                     help="a head printed by an earlier audit; it must still be in the log")
    args = parser.parse_args(argv)
    try:
        report = asyncio.run(audit(args.db, show_progress=not args.quiet, anchors=args.anchor))
    except Exception as exc:  # an unreadable file is a failed audit, said plainly
        print(f"AUDIT FAILED: cannot read {args.db}: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
