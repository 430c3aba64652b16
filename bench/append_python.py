"""The Python of one charged prediction's append (encode, seal, insert parameters, the
RecordedEvents, every projector) against a database that does nothing: µs an append, the
best of 9 runs, for this checkout and another (`--before DIR`), alternated in fresh
processes. What runs inside the write's lock, without SQLite's own time, which on a busy
2-core machine swamps a few µs in bench/write_bench.py.

The four events, metadata and facts are a real prediction's (bench/profile_predict.py's
loop, three predictions); the hot path's projectors read nothing (the writer's facts), so a
database that does nothing runs all their Python.

Run: .venv/bin/python bench/append_python.py --before /tmp/micro-before [--alternations 6]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import io
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

APPENDS = 5000


def measure(root: Path) -> float:
    sys.path[:0] = [str(root), str(root / "bench")]
    import profile_predict

    from events import sql_log

    captured: list[tuple[Any, ...]] = []
    append = sql_log.SqlLogSession.append

    async def spy(self: Any, stream_id: str, expected: int, events: Any,
                  metadata: Any = sql_log.Metadata()) -> Any:  # noqa: B008 - frozen
        facts = self._facts.get(stream_id)
        recorded = await append(self, stream_id, expected, events, metadata)
        if len(events) == 4:
            captured.append((self._store, stream_id, expected, events, metadata, facts))
        return recorded

    sql_log.SqlLogSession.append = spy  # type: ignore[method-assign]
    profile_predict.CLIENTS, profile_predict.PREDICTIONS = 1, 3
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
        asyncio.run(profile_predict.run(Path(scratch), None, collections.Counter()))
    sql_log.SqlLogSession.append = append  # type: ignore[method-assign]
    store, stream, expected, events, metadata, facts = captured[-1]

    class NoDatabase:
        async def execute(self, query: str, params: object = ()) -> None:
            pass

        async def fetchall(self, query: str, params: object = ()) -> list[dict[str, Any]]:
            raise AssertionError(f"the hot path read: {query}")

        async def fetchone(self, query: str, params: object = ()) -> dict[str, Any] | None:
            raise AssertionError(f"the hot path read: {query}")

    async def appends() -> None:
        for _ in range(APPENDS):
            memo = sql_log.BatchMemo()
            memo.head = (100, "0" * 64)
            session = sql_log.SqlLogSession(store, NoDatabase(), memo)  # type: ignore[arg-type]
            session.read_in_write(stream, expected, facts[1] if facts else None)
            await session.append(stream, expected, events, metadata)

    loop = asyncio.new_event_loop()
    best = min(timeit.repeat(lambda: loop.run_until_complete(appends()), number=1, repeat=9))
    return best / APPENDS * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path)
    parser.add_argument("--alternations", type=int, default=6)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child's checkout
    args = parser.parse_args()
    if args.one:
        print(measure(args.one.resolve()))
        return
    ours = Path(__file__).resolve().parent.parent
    roots = {"ours": ours} | ({"before": args.before.resolve()} if args.before else {})
    best: dict[str, float] = {}
    for _ in range(args.alternations):
        for name, root in roots.items():
            out = subprocess.run([sys.executable, __file__, "--one", str(root)], check=True,
                                 capture_output=True, text=True).stdout
            best[name] = min(best.get(name, float("inf")), float(out))
    for name, value in best.items():
        print(f"{name:7s} {value:7.1f} µs an append (best of {args.alternations} processes)")
    if "before" in best:
        print(f"ours ÷ before: {best['ours'] / best['before']:.3f}")


if __name__ == "__main__":
    main()
