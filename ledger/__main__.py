"""`python -m ledger audit --db PATH | --database-url URL`: exit 0 when the log and its
projections hold. `ML_CABINET_DATABASE_URL` stands for `--database-url`.
`python -m ledger verify-statement FILE --public-key PEM_FILE` checks a statement offline.
`python -m ledger admin grant|revoke USERNAME --db PATH | --database-url URL`: the operator
role, which only the command line gives (it is an event: the auditor sees it)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import sys

from ledger.admin import AdminService
from ledger.audit import audit, parse_anchor
from ledger.checkpoints import Checkpoint
from ledger.consistency import verify_consistency_file
from ledger.errors import LedgerError
from ledger.service import LedgerService
from ledger.statement_proof import verify_statement_file
from ledger.store import is_database_url, ledger_store_at


def redacted(url: str) -> str:
    """The URL without its password, fit for an error message."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def held_checkpoint(path: str) -> Checkpoint:
    """A checkpoint file, or a statement file (its checkpoint is taken)."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
        return Checkpoint.from_json(data.get("checkpoint", data))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise argparse.ArgumentTypeError(f"{path}: not a checkpoint ({exc})") from exc


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
    run.add_argument("--checkpoints", action="store_true",
                     help="also hold the log to every signed checkpoint it keeps")
    run.add_argument("--public-key", action="append", default=[], metavar="PEM_FILE",
                     help="trust checkpoints signed by this key (repeat for rotated keys; "
                          "default: the keys listed in the database)")
    run.add_argument("--checkpoint", action="append", default=[], type=held_checkpoint,
                     metavar="JSON_FILE", help="a checkpoint kept outside the service (from "
                     "/api/v1/ledger/checkpoints/latest or a statement); implies --checkpoints")
    check = commands.add_parser("verify-statement", help="check a statement file offline")
    check.add_argument("file")
    check.add_argument("--public-key", required=True, metavar="PEM_FILE")
    extends = commands.add_parser("verify-consistency",
                                  help="check that a newer checkpoint extends an older one")
    extends.add_argument("file", help="the reply of /api/v1/ledger/checkpoints/consistency")
    extends.add_argument("--public-key", required=True, action="append", metavar="PEM_FILE")
    extends.add_argument("--held", metavar="JSON_FILE",
                         help="the checkpoint (or statement) you kept: it must be the 'from'")
    role = commands.add_parser("admin", help="grant or revoke the operator role")
    role.add_argument("action", choices=["grant", "revoke"])
    role.add_argument("username")
    role_where = role.add_mutually_exclusive_group()
    role_where.add_argument("--db", help="path of the SQLite file")
    role_where.add_argument("--database-url", help="postgresql://user:pass@host:port/db "
                            "(default: $ML_CABINET_DATABASE_URL)")
    args = parser.parse_args(argv)
    if args.command == "admin":
        return admin_command(parser, args)
    if args.command == "verify-consistency":
        return verify_consistency_file(args.file, args.public_key, args.held)
    if args.command == "verify-statement":
        return verify_statement_file(args.file, args.public_key)
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        parser.error("--jobs is a number of processes from 1 to 64")
    target, shown = where_to(parser, args)
    try:
        keys = [open(name).read() for name in args.public_key]  # noqa: SIM115 - read whole
        report = asyncio.run(audit(target, show_progress=not args.quiet, anchors=args.anchor,
                                   checkpoints=args.checkpoints or bool(args.checkpoint),
                                   public_keys=keys, held_checkpoints=args.checkpoint,
                                   jobs=args.jobs))
    except Exception as exc:  # an unreadable file or database is a failed audit, said plainly
        print(f"AUDIT FAILED: cannot read {shown}: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


def where_to(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, str]:
    """The database the command names (a path or a URL), and how to show it in a message."""
    url = args.database_url or (None if args.db else os.environ.get("ML_CABINET_DATABASE_URL"))
    if url is None and args.db is None:
        parser.error("give --db PATH or --database-url URL (or ML_CABINET_DATABASE_URL)")
    if url is not None and not url.startswith(("postgresql://", "postgres://")):
        parser.error("a database URL starts with postgresql://")
    target: str = url or args.db
    return target, redacted(target) if url else target


def admin_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    target, shown = where_to(parser, args)
    if not is_database_url(target) and not os.path.exists(target):  # never create a new file
        print(f"no database at {shown}", file=sys.stderr)
        return 2
    by = getpass.getuser()
    try:
        changed = asyncio.run(set_role(target, args.username, args.action == "grant", by))
    except LedgerError as exc:
        print(f"{args.action}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"{args.action}: cannot write to {shown}: {exc}", file=sys.stderr)
        return 2
    verb = "is now an operator" if args.action == "grant" else "is no longer an operator"
    print(f"{args.username} {verb}" if changed else f"{args.username} was already an operator")
    return 0


async def set_role(target: str, username: str, operator: bool, by: str) -> bool:
    store = ledger_store_at(target)
    await store.open()
    try:
        return await AdminService(LedgerService(store)).set_role(username, operator, by)
    finally:
        await store.close()


if __name__ == "__main__":
    sys.exit(main())
