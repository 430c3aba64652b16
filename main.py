"""Run ML Cabinet: `python main.py [--host H] [--port P] [--db PATH]`.

The SQLite schema is created on first start; environment variables ML_CABINET_HOST,
ML_CABINET_PORT and ML_CABINET_DB stand in for the flags.
"""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from events import StoreCorrupted
from web.app import create_app
from web.config import Config
from web.middlewares import RequestLog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ML Cabinet: pay-per-use predictions")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8080)")
    parser.add_argument("--db", help="SQLite file (default ml_cabinet.db)")
    args = parser.parse_args(argv)
    config = Config.from_env(host=args.host, port=args.port, db_path=args.db)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        web.run_app(create_app(config), host=config.host, port=config.port,
                    access_log_class=RequestLog, print=lambda text: logging.info(
                        "ML Cabinet on http://%s:%s (database %s)", config.host, config.port,
                        config.db_path))
    except StoreCorrupted as error:
        logging.error("refusing to start: %s. Run `python -m ledger audit --db %s`.",
                      error, config.db_path)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
