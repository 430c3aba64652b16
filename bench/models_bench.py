"""Predictions per second through MLService, in process, for the diabetes model (ONNX) and the
Doubler (code), at 1, 100 and 1,000 rows per request.

Each request is the whole use case on a real SQLite file (synchronous=FULL, as served):
validate the rows, hold in one write transaction, one vectorised model call in a worker
thread, settle in a second transaction. Requests go one after another (one client), so the
figures are per request latency turned into throughput; `model ms` is run_model alone on the
same rows, to show how much of a request the model is. Every request must complete and charge
price × rows; a run where one does not exits 1.

Run: .venv/bin/python bench/models_bench.py [--rounds 3] [--seconds 3] [--max-requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import ROOT, Spread, load, machine, table

sys.path.insert(0, str(ROOT))

from ledger import LedgerService, Passwords, UserService, ledger_store
from ml import MLModelManager, MLService, catalogue, check_rows, run_model

DOUBLER, DIABETES = 1, 3
SIZES = (1, 100, 1000)


def diabetes_rows(ml: MLService, count: int) -> list[dict[str, float]]:
    """Rows inside each feature's declared range, as a client would send them (JSON objects)."""
    spec = ml.spec(DIABETES)
    generator = np.random.default_rng(3)
    rows: list[dict[str, float]] = [{} for _ in range(count)]
    for feature in spec.schema.features:
        if feature.categories:
            values = generator.choice(feature.categories, size=count)
        else:
            assert feature.minimum is not None and feature.maximum is not None
            values = generator.uniform(feature.minimum, feature.maximum, size=count)
            values = np.round(values) if feature.type == "integer" else values
        for row, value in zip(rows, values, strict=True):
            row[feature.name] = float(value)
    return rows


def items_for(ml: MLService, model_id: int, count: int) -> list[Any]:
    if model_id == DOUBLER:
        return [float(i) for i in range(count)]
    return list(diabetes_rows(ml, count))


def model_ms(ml: MLService, model_id: int, items: list[Any], repeats: int = 20) -> float:
    spec = ml.spec(model_id)
    runtime = ml.models.get_runtime(model_id)
    assert runtime is not None
    checked = check_rows(spec.schema, items, source="json")
    started = time.perf_counter()
    for _ in range(repeats):
        run_model(runtime, spec.schema, checked)
    return (time.perf_counter() - started) / repeats * 1000


async def one_round(folder: Path, model_id: int, size: int, seconds: float,
                    max_requests: int) -> tuple[float, float, float]:
    """Requests per second, rows per second and model ms of one round on a fresh file."""
    store = ledger_store(folder / f"bench-{model_id}-{size}-{time.monotonic_ns()}.db")
    await store.open()
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="predict")
    try:
        ledger = LedgerService(store)
        ml = MLService(ledger, MLModelManager(catalogue(ROOT / "models")), executor)
        user = await UserService(ledger, Passwords.cheap()).register("bench", "bench password")
        await ledger.top_up(user.id, 1_000_000)
        items = items_for(ml, model_id, size)
        price = ml.spec(model_id).price_per_item_credits
        done, started = 0, time.perf_counter()
        while done < max_requests and time.perf_counter() - started < seconds:
            result = await ml.process_task(user.id, model_id, items)
            if result.status != "completed" or result.cost_credits != price * size:
                raise SystemExit(f"a request did not complete as it should: {result.status}, "
                                 f"{result.cost_credits} credits")
            done += 1
            if result.balance.available_credits < price * size:  # a top-up, timed too
                await ledger.top_up(user.id, 1_000_000)
        elapsed = time.perf_counter() - started
        return done / elapsed, done * size / elapsed, model_ms(ml, model_id, items)
    finally:
        executor.shutdown(wait=True)
        await store.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--max-requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {machine()}; load {load()}")
    rows = []
    for model_id, name in ((DOUBLER, "Doubler (code)"), (DIABETES, "Diabetes (ONNX)")):
        for size in SIZES:
            rounds = []
            with tempfile.TemporaryDirectory(prefix="mlc-models-bench-") as scratch:
                for _ in range(args.rounds):
                    rounds.append(await one_round(Path(scratch), model_id, size, args.seconds,
                                                  args.max_requests))
            requests, predictions, model = (Spread.of([r[i] for r in rounds]) for i in range(3))
            rows.append([name, size, requests.show(0), predictions.show(0), model.show(3)])
            print(f"  {name}, {size} rows: {predictions.median:,.0f} predictions/s",
                  file=sys.stderr)
    print(table(["model", "rows/request", "requests/s", "predictions/s", "model ms"], rows))
    print(f"median (min–max) of {args.rounds} rounds of up to {args.seconds:g} s; "
          f"load after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
