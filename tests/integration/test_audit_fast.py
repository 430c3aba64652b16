"""The audit's fast path on every kind of event the ledger writes, on both stores: its
in-memory fold gives the very rows the projectors wrote, an honest log passes on it with
one process or two, and a changed row sends the audit to the projectors' replay."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from events.database import InlineDatabase
from ledger import audit_fast
from ledger.audit import _table_spec, audit
from ledger.audit_jobs import tables
from ledger.control import Operation
from ledger.keys import KeyService
from ledger.projections import ledger_projectors
from ledger.service import TaskDraft
from ledger.spend import KeyLimit

if TYPE_CHECKING:
    from conftest import Services

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)


async def every_kind_of_event(services: Services) -> None:
    """Accounts, top-ups, a charge, limits, a time zone, keys made and revoked, predictions
    settled (in part, with rows the model could not predict), failed and rejected."""
    ledger, ml = services.ledger, services.ml
    alice = int((await services.users.register("Alice", "correct horse")).id)
    bob = int((await services.users.register("bob", "correct horse")).id)
    carol = int((await services.users.register("carol", "correct horse")).id)
    await ledger.top_up(alice, 500)
    await ledger.top_up(bob, 100)
    await ledger.set_time_zone(alice, "Europe/Moscow")
    await ledger.set_limits(alice, 400, None)
    await ledger.set_limits(bob, None, 1000)
    keys = KeyService(ledger)
    issued = await keys.create(alice, name="ci", scope="predict", monthly_limit_credits=50)
    await ml.process_task(alice, 1, [1, 2.5, 1e-7],
                          key=KeyLimit(key_id=issued.view.id, monthly_limit_credits=50))
    await keys.revoke(alice, issued.view.id)
    await keys.create(bob, name="reader", scope="read", expires_in_days=30)
    await ml.process_task(alice, 1, [1e308])  # fails: the output overflows
    await ml.process_task(carol, 1, [1])  # rejected: no credits
    draft = TaskDraft(model_id=1, input_data=[1.0, None, 3.0], input_indexes=[0, 1, 2],
                      invalid=[{"index": 3, "reason": "not a number"}], cost_credits=3)
    ticket = await ledger.submit_task(bob, draft, Operation(
        user_id=bob, operation_id=uuid.uuid4().hex, kind="predict", fingerprint="test"))
    await ledger.complete_task(bob, ticket.task_id, [2.0, None, 6.0], "partly predicted",
                               cost_credits=2,
                               unpredictable=[{"index": 1, "reason": "the model said no"}])
    await ledger.withdraw(bob, 5, "Charge")


@pytest.fixture
async def audited(services: Services, ledger_at: str | Path) -> str | Path:
    await every_kind_of_event(services)
    return ledger_at


@pytest.mark.parametrize("jobs", [1, 2])
async def test_an_honest_log_of_every_kind_of_event_passes_on_the_fast_path(
        audited: str | Path, jobs: int) -> None:
    report = await audit(audited, show_progress=False, jobs=jobs)
    assert report.ok and report.fast_path, report.render()
    assert report.balances == 3 and report.events > 20


async def test_the_fold_gives_the_rows_the_projectors_wrote(
        audited: str | Path, tmp_path: Path) -> None:
    if not isinstance(audited, Path):
        pytest.skip("the fold reads a SQLite file; a PostgreSQL audit folds its snapshot")
    uri = f"file:{audited}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        fold, _, events = audit_fast._fold(conn, "", None)
        assert events == conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        for table in tables():
            live = conn.execute(f"SELECT * FROM {table}").fetchall()
            assert sorted(fold.rows(table), key=repr) == sorted(live, key=repr), table
    db = await InlineDatabase.connect_inline(tmp_path / "replay.db")
    try:
        await db.executescript("\n".join(p.schema for p in ledger_projectors()))
        await db.execute("ATTACH DATABASE ? AS live", (uri,))
        specs = [await _table_spec(db, table) for table in tables()]
    finally:
        await db.close()
    assert audit_fast.audit_group(uri, "", None, specs) == audit_fast.GroupResult(True, events)


async def test_a_changed_row_sends_the_audit_to_the_projectors(
        audited: str | Path, tmp_path: Path) -> None:
    if not isinstance(audited, Path):
        pytest.skip("the row is changed in the SQLite file")
    with closing(sqlite3.connect(audited)) as conn:
        conn.execute("UPDATE tasks SET output_data = '[2.0,null,7.0]' WHERE status = "
                     "'completed' AND cost_credits = 2")
        conn.commit()
    report = await audit(audited, show_progress=False, jobs=1)
    assert not report.ok and not report.fast_path
    assert list(report.differences) == ["tasks"]
