"""Run ML Cabinet: `python main.py [--host H] [--port P] [--db PATH] [--models DIR]`.

The SQLite schema is created on first start; environment variables ML_CABINET_HOST,
ML_CABINET_PORT, ML_CABINET_DB and ML_CABINET_MODELS_DIR stand in for the flags.

Where a model joins: the models folder (`models/` in the repository by default). Drop a
manifest (`<name>.json`: id, name, price, limits, kind, features, labels, artifact, sha256)
and its ONNX artifact there and restart; `python -m ml.train` writes the two shipped ones.
A manifest that cannot be served stops the start with one line naming the file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from events import StoreCorrupted
from ml import ManifestError
from web.app import create_app
from web.config import Config
from web.middlewares import RequestLog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ML Cabinet: pay-per-use predictions")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8080)")
    parser.add_argument("--db", help="SQLite file (default ml_cabinet.db)")
    parser.add_argument("--models", help="the models folder (default: the repository's "
                                         "models/)")
    args = parser.parse_args(argv)
    config = Config.from_env(host=args.host, port=args.port, db_path=args.db,
                             models_dir=Path(args.models) if args.models else None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        app = create_app(config)
    except ManifestError as error:
        logging.error("refusing to start: %s", error)
        return 4
    try:
        web.run_app(app, host=config.host, port=config.port,
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
