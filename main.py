"""Run ML Cabinet: `python main.py [--host H] [--port P] [--db PATH | --database-url URL]
[--models DIR] [--workers N]`.

The schema is created on first start; environment variables ML_CABINET_HOST, ML_CABINET_PORT,
ML_CABINET_DB, ML_CABINET_DATABASE_URL and ML_CABINET_MODELS_DIR stand in for the flags.
Without a database URL the ledger is the SQLite file; with one, it is that PostgreSQL database,
shared with any number of other processes.

Where a model joins: the models folder (`models/` in the repository by default). Drop a
manifest (`<name>.json`: id, name, price, limits, kind, features, labels, artifact, sha256)
and its ONNX artifact there and restart; `python -m ml.train` writes the two shipped ones.
A manifest that cannot be served stops the start with one line naming the file.

--workers N (ML_CABINET_WORKERS) serves the port from N processes on the one database
(web/workers.py: a supervisor starts them one after another, SO_REUSEPORT spreads the
connections, a stop reaches every one). SIGTERM or SIGINT stops cleanly (web/server.py):
requests in flight get ML_CABINET_SHUTDOWN_GRACE_SECONDS to finish, the holds of the rest
are released, exit 0.
ML_CABINET_LOG_FORMAT=json logs one JSON object per line; /metrics needs
ML_CABINET_METRICS_TOKEN or ML_CABINET_METRICS_PORT (README, Operations).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from pathlib import Path

from events import StoreCorrupted, StoreUnavailable
from ml import ManifestError
from web.app import create_app
from web.config import Config
from web.logs import setup_logging
from web.server import serve
from web.workers import MAX_WORKERS, WorkerLink, supervise, worker_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ML Cabinet: pay-per-use predictions")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8080)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", help="SQLite file (default ml_cabinet.db)")
    where.add_argument("--database-url", help="postgresql://user:pass@host:port/db "
                       "(default: $ML_CABINET_DATABASE_URL)")
    parser.add_argument("--models", help="the models folder (default: the repository's "
                                         "models/)")
    parser.add_argument("--workers", type=int,
                        help="serve the port from this many processes (default 1)")
    args = parser.parse_args(argv)
    link = WorkerLink.from_env()  # set: this process is one of --workers N
    try:
        # --db on the command line wins over a URL in the environment, as in init_db.py.
        config = Config.from_env(host=args.host, port=args.port, db_path=args.db,
                                 database_url=args.database_url,
                                 models_dir=Path(args.models) if args.models else None)
        if args.db and not args.database_url:
            config = dataclasses.replace(config, database_url=None)
    except ValueError as error:
        parser.error(str(error))
    workers = worker_count(parser, args.workers, config)
    if workers > 1 and link is None:
        setup_logging(config.log_format)
        return supervise(worker_command(Path(__file__), sys.argv[1:] if argv is None else argv),
                         workers)
    if link is not None and not config.database_url:  # login failures counted apart
        config = dataclasses.replace(config, login_share=workers)
    if config.database_url:  # the audit's command line is ~0.05 s of imports: only here
        from ledger.__main__ import redacted

        shown = redacted(config.database_url)
    else:
        shown = str(config.db_path)
    audit = (f"--database-url {shown}" if config.database_url else f"--db {config.db_path}")
    setup_logging(config.log_format)
    try:
        app = create_app(config)
    except ManifestError as error:
        logging.error("refusing to start: %s", error)
        return 4
    use_uvloop()  # after the models loaded: a refusal to start stays one line
    try:
        asyncio.run(serve(app, config, shown, link))  # until SIGTERM or SIGINT: a clean stop
    except ManifestError as error:  # an ONNX session that could not open once serving
        logging.error("refusing to serve: %s", error)
        return 4
    except StoreCorrupted as error:
        logging.error("refusing to start: %s. Run `python -m ledger audit %s`.", error, audit)
        return 3
    except StoreUnavailable as error:
        logging.error("cannot open the database %s: %s", shown, error)
        return 2
    return 0


def worker_count(parser: argparse.ArgumentParser, flag: int | None, config: Config) -> int:
    try:
        workers = flag if flag is not None else int(os.environ.get("ML_CABINET_WORKERS", "1"))
    except ValueError:
        parser.error("ML_CABINET_WORKERS must be a whole number")
    if not 1 <= workers <= MAX_WORKERS:
        parser.error(f"--workers must be between 1 and {MAX_WORKERS}")
    if workers > 1 and config.port == 0:
        parser.error("--workers needs a fixed --port: each worker would pick its own")
    if workers > 1 and config.metrics_port is not None:
        # Each worker's counters are its own; N of them cannot share one side port.
        parser.error("ML_CABINET_METRICS_PORT serves one process: with --workers, scrape "
                     "/metrics on the main port with ML_CABINET_METRICS_TOKEN")
    return workers


def use_uvloop() -> None:
    """uvloop when it is installed (requirements.txt pins it) and ML_CABINET_UVLOOP is not 0:
    the same asyncio API, with less of each request's CPU spent in the loop itself."""
    if os.environ.get("ML_CABINET_UVLOOP", "1") == "0":
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    logging.info("event loop: uvloop")


if __name__ == "__main__":
    sys.exit(main())
