"""Every benchmark in sequence with modest defaults (about 15 minutes), then one summary.

Installs the baseline's dependencies (bench/requirements.txt) into this interpreter's
environment first if they are missing: they are the benchmark's, not ML Cabinet's.

Run: .venv/bin/python bench/run_all.py [--quick]   (also `make bench`)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import BENCH, PYTHON, ROOT, load, machine, table

BASELINE_MODULES = ("fastapi", "uvicorn", "sqlalchemy", "uvloop", "httptools")
# Each script bounds its own loops; this is the backstop for a hang.
SCRIPT_TIMEOUT_S = 900

FULL = {
    "http_bench": ["--rounds", "3", "--requests", "2000", "--seconds", "15"],
    "ledger_bench": ["--rounds", "3", "--ops", "3000", "--seconds", "6"],
    "audit_bench": ["--events", "100000", "--rounds", "3"],
    "pg_bench": ["--rounds", "3", "--seconds", "5"],
    "crash_soak": ["--kills", "100", "--seconds", "600"],
}
QUICK = {
    "http_bench": ["--rounds", "1", "--requests", "200", "--seconds", "5",
                   "--floor-requests", "300"],
    "ledger_bench": ["--rounds", "1", "--ops", "100", "--seconds", "3"],
    "audit_bench": ["--events", "5000", "--rounds", "1"],
    "pg_bench": ["--rounds", "1", "--seconds", "2", "--clients", "8"],
    "crash_soak": ["--kills", "6", "--seconds", "120"],
}
# These start a throwaway PostgreSQL cluster (crash_soak also soaks SQLite).
NEEDS_POSTGRES = ("pg_bench", "crash_soak")


def ensure_baseline_deps() -> None:
    missing = [m for m in BASELINE_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return
    print(f"installing the baseline's dependencies ({', '.join(missing)} missing) from "
          "bench/requirements.txt", flush=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-r", str(BENCH / "requirements.txt")], check=True, timeout=600)


def has_postgres() -> bool:
    sys.path.insert(0, str(ROOT / "tests"))
    from pgcluster import find_bin_dir  # tests/ joins the path only here

    return find_bin_dir() is not None


def run(script: str, args: list[str], out: Path) -> tuple[int, float]:
    command = [PYTHON, str(BENCH / f"{script}.py"), *args, "--json", str(out)]
    print(f"\n$ {' '.join(['.venv/bin/python', f'bench/{script}.py', *args])}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, timeout=SCRIPT_TIMEOUT_S, check=False)
    return done.returncode, time.perf_counter() - started


def spread(value: dict[str, float], digits: int = 2, suffix: str = "×") -> str:
    return (f"{value['median']:,.{digits}f}{suffix} ({value['low']:,.{digits}f}–"
            f"{value['high']:,.{digits}f})")


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    http = results.get("http_bench")
    if http:
        for cell, ratio in http["ratios"].items():
            rows.append(["HTTP", f"{cell}: req/s", spread(ratio)])
        for name in http["probes"]:
            probes = http["probes"][name]
            accepted = [p["accepted"] for p in probes]
            lowest = min(p["final_balance"] for p in probes)
            rows.append(["HTTP", f"overdraw probe, {name} (5 affordable, 64 sent)",
                         f"accepted {accepted}; lowest final balance {lowest}"])
            fresh = http["fresh"].get(name, {})
            refused = sum(n for status, n in fresh.items() if status != "200")
            rows.append(["HTTP", f"fresh-token probe, {name}: refused right after login",
                         f"{refused} of {sum(fresh.values())}"])
            checks = [c for c in http["checks"] if c["contender"] == name]
            rows.append(["HTTP", f"correctness after load, {name}",
                         f"{sum(c['ok'] for c in checks)}/{len(checks)} rounds: "
                         f"{checks[-1]['store_check'] if checks else '-'}"])
    ledger = results.get("ledger_bench")
    if ledger:
        for ratio in ledger["ratios"]:
            where = f", {ratio['concurrency']} clients" if "concurrency" in ratio else ""
            rows.append(["ledger", f"{ratio['op']}{where}: {ratio['ratio']}",
                         spread(ratio["value"])])
        for op, calls in ledger["database_calls_per_use_case"].items():
            rows.append(["ledger", f"{op}: trips to another thread per call, alone",
                         f"{calls['thread trips']:g}"])
    audit = results.get("audit_bench")
    if audit:
        for name in ("audit", "audit_in_process", "check_log"):
            rows.append(["audit", f"{name} over {audit['events']:,} events: events/s",
                         spread(audit[name]["events_per_s"], 0, "")])
        rows.append(["audit", "verdicts", ", ".join(audit["verdicts"])])
    pg = results.get("pg_bench")
    if pg:
        for cell in pg.get("http", {}).get("cells", []):
            rows.append(["pg", f"{cell['setting']}: charged predictions/s "
                               f"(ratio to {pg['http']['reference']})",
                         f"{spread(cell['charged_per_s'], 0, '')}; "
                         f"{spread(cell['ratio'])}"])
        for cell in pg.get("append", {}).get("cells", []):
            rows.append(["pg", f"append, {cell['store']}, {cell['batch']} events x "
                               f"{cell['appenders']} appenders: events/s",
                         spread(cell["events_per_s"], 0, "")])
    for soak in results.get("crash_soak", []):
        rows.append(["soak", f"{soak['store']}: {soak['kills']} SIGKILLs, "
                             f"{soak['acknowledged']} acknowledged",
                     f"lost {soak['lost']}, applied twice {soak['applied_twice']}, "
                     f"audit exit {soak['audit_exit']}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a minute or so")
    args = parser.parse_args(argv)
    ensure_baseline_deps()
    print(f"run_all: {machine()}; load {load()}", flush=True)
    plan = QUICK if args.quick else FULL
    results: dict[str, Any] = {}
    failures = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlc-bench-") as scratch:
        for script, script_args in plan.items():
            if script in NEEDS_POSTGRES and not has_postgres():
                print(f"\n(skipping {script}: PostgreSQL is missing; `make postgres` "
                      "installs it)", flush=True)
                continue
            out = Path(scratch) / f"{script}.json"
            code, seconds = run(script, script_args, out)
            print(f"({script} took {seconds:.0f} s, exit {code})", flush=True)
            if code != 0:
                failures.append(script)
            if out.exists():
                results[script] = json.loads(out.read_text())
    print(f"\n== summary ({time.perf_counter() - started:.0f} s; {machine()}; load at the end "
          f"{load()}) ==\n")
    print(table(["bench", "figure", "median (min–max) or result"], summary_rows(results)))
    if failures:
        print(f"\nFAILED: {', '.join(failures)} (a benchmark exits non-zero when a "
              "correctness check of ours fails)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
