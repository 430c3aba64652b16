"""A crash soak: keyed load on app processes that are SIGKILLed over and over, then proof from
the log that no acknowledged operation was lost and no key took effect twice.

One ledger (a SQLite file or a PostgreSQL database) and `processes` servers on it. Each cycle
runs clients against all of them, then SIGKILLs one at a random moment (every other kill waits
until some task holds credits) and starts it again. At the end every key is sent once more:
each must give back its first stated outcome; the log is read once and checked in Python, so
the check is the same on both stores; the audit must pass. Used by `bench/crash_soak.py` (the
figures in SECURITY.md) and by the slow test `test_crash_soak.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import aiohttp
from fault_harness import (
    CLIENT_TIMEOUT,
    Api,
    Reply,
    Server,
    Servers,
    Where,
    is_url,
    pg_query,
    run_audit,
)

from web.public_ids import TASK, TRANSACTION, PublicIds

USERS = 4
CLIENTS_PER_USER = 2  # two clients per account, so one account's writes race each other
POLLS, POLL_INTERVAL_S = 2000, 0.005  # waits for a hold, or for holds to be released
RELEASE_POLLS = 6000  # 30 s for the leases of killed processes to expire and be swept


@dataclass
class Attempt:
    """One operation a client tried, under its own idempotency key."""

    key: str
    user: int
    kind: Literal["top_up", "predict"]
    credits: int  # added by the top-up, or charged by the prediction if it completes
    data: list[float] = field(default_factory=list)
    reply: Reply | None = None  # the first reply that stated an outcome

    @property
    def operation_id(self) -> str:
        return f"api:{self.key}"

    async def send(self, api: Api, token: str) -> Reply:
        if self.kind == "top_up":
            return await api.top_up(token, self.credits, key=self.key)
        return await api.predict(token, self.data, key=self.key)

    def is_outcome(self, reply: Reply) -> bool:
        """A reply stored against the key: a retry must get it back unchanged."""
        if self.kind == "top_up":
            return reply.status == 201
        return reply.status in (200, 402) or (
            reply.status == 502 and reply.code == "prediction_failed")


def random_attempt(rng: random.Random, n: int, user: int) -> Attempt:
    """A top-up (40 %) or a prediction of 1-4 numbers (1 credit an item), under key n."""
    if rng.random() < 0.4:
        return Attempt(f"top-up-{n}", user, "top_up", rng.randint(1, 30))
    data = [float(rng.randint(-99, 99)) for _ in range(rng.randint(1, 4))]
    return Attempt(f"predict-{n}", user, "predict", len(data), data)


def is_pending(reply: Reply) -> bool:
    """The client does not know the outcome yet and asks again later: the key's first request
    is still open (its process may have died holding it), or the service could not finish it
    (503: say its hold was released by another process meanwhile)."""
    return (reply.status == 409 and reply.code == "request_in_progress") or (
        reply.status == 503 and reply.code == "service_unavailable")


@dataclass(frozen=True)
class SoakFigures:
    store: str
    processes: int
    kills: int
    kills_holding_credits: int  # kills made once some task was seen holding credits
    interrupted_tasks: int  # tasks a kill caught holding credits, failed and released later
    keys: int
    acknowledged: int
    unknown_replies: int
    lost: int
    applied_twice: int
    changed_outcome: int
    problems: list[str]
    audit_exit: int
    seconds: float

    @property
    def clean(self) -> bool:
        return (self.lost == 0 and self.applied_twice == 0 and self.changed_outcome == 0
                and not self.problems and self.audit_exit == 0)


@dataclass
class Soak:
    servers: Servers
    where: Where
    rng: random.Random
    tokens: list[str] = field(default_factory=list)
    attempts: dict[str, Attempt] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # replies no client should ever get
    kills_holding_credits: int = 0
    unknown_replies: int = 0  # 409 in progress or 503: the client retries later
    numbers: itertools.count[int] = field(default_factory=itertools.count)

    def new_attempt(self, user: int) -> Attempt:
        attempt = random_attempt(self.rng, next(self.numbers), user)
        self.attempts[attempt.key] = attempt
        return attempt

    def record(self, attempt: Attempt, reply: Reply) -> None:
        if is_pending(reply):
            self.unknown_replies += 1
            return
        if not attempt.is_outcome(reply):
            self.problems.append(f"{attempt.key}: unexpected {reply}")
        elif attempt.reply is None:
            attempt.reply = reply
        elif attempt.reply != reply:
            self.problems.append(f"{attempt.key}: {attempt.reply} and then {reply}")

    async def cycle(self, running: list[Server], victim: Server, hold_first: bool) -> None:
        """Clients on every server retry what they do not know, then send new work, until
        `victim` is SIGKILLed; the clients of the others stop with them."""
        kill_after = self.rng.randint(5, 40)
        answered = 0
        enough, killing = asyncio.Event(), asyncio.Event()
        queues = {u: [a for a in self.attempts.values() if a.user == u and a.reply is None]
                  for u in range(USERS)}

        async def client(api: Api, server: Server, user: int) -> None:
            nonlocal answered
            while not killing.is_set():
                attempt = queues[user].pop() if queues[user] else self.new_attempt(user)
                try:
                    reply = await attempt.send(api, self.tokens[user])
                except (aiohttp.ClientError, TimeoutError) as error:
                    if server is not victim or not killing.is_set():
                        self.problems.append(f"{attempt.key}: {error!r} from a live server")
                        enough.set()
                    return
                self.record(attempt, reply)
                answered += 1
                if answered >= kill_after or len(self.problems) > 0:
                    enough.set()

        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
            clients = [asyncio.create_task(client(Api(session, s), s, u))
                       for n, s in enumerate(running) for u in range(USERS)
                       for _ in range(CLIENTS_PER_USER if n == 0 else 1)]
            try:
                await enough.wait()
                if hold_first and await wait_for(partial(any_open_hold, self.where), POLLS):
                    self.kills_holding_credits += 1
                killing.set()
                await self.servers.kill(victim)
            finally:
                killing.set()
                await asyncio.gather(*clients)


async def any_open_hold(where: Where) -> bool:
    return bool(await fetch(where, "SELECT task_id FROM holds WHERE status = 'open' LIMIT 1"))


async def no_open_hold(where: Where) -> bool:
    return not await any_open_hold(where)


async def wait_for(condition: Callable[[], Awaitable[bool]], polls: int) -> bool:
    for _ in range(polls):
        if await condition():
            return True
        await asyncio.sleep(POLL_INTERVAL_S)  # a poll interval, bounded by the polls
    return False


async def fetch(where: Where, sql: str) -> list[dict[str, Any]]:
    """Rows of a query without parameters, as dicts, from either store."""
    if is_url(where):
        return [dict(r) for r in await pg_query(str(where), sql)]
    with contextlib.closing(sqlite3.connect(f"file:{where}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql).fetchall()]


async def run_soak(servers: Servers, where: Where, *, processes: int, kills: int,
                   seconds: float, seed: int) -> SoakFigures:
    """`kills` SIGKILLs (fewer if `seconds` run out first), then the final check."""
    started = time.monotonic()
    # Half the kills must catch a task holding credits: the Doubler's two-phase path holds
    # (its one-write path never does; test_crash_recovery kills that one too).
    servers.env.setdefault("ML_CABINET_ONE_TRANSACTION", "0")
    soak = Soak(servers, where, random.Random(seed))
    running = [await servers.start(where) for _ in range(processes)]
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        soak.tokens = [await Api(session, running[n % processes]).signup(f"soak{n}")
                       for n in range(USERS)]
    done = 0
    while done < kills and time.monotonic() - started < seconds and not soak.problems:
        victim = soak.rng.choice(running)
        await soak.cycle(running, victim, hold_first=done % 2 == 1)
        running[running.index(victim)] = await servers.start(where)
        done += 1

    # Processes started after a kill release the holds its tasks left (at startup on SQLite,
    # by the lease sweeper on PostgreSQL), so every key has its outcome for good.
    if not await wait_for(partial(no_open_hold, where), RELEASE_POLLS):
        soak.problems.append("holds of killed processes were never released")
    final: dict[str, Reply] = {}
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        api = Api(session, running[0])
        for attempt in soak.attempts.values():
            final[attempt.key] = await attempt.send(api, soak.tokens[attempt.user])
        expected = {u: 0 for u in range(USERS)}
        for attempt in soak.attempts.values():
            reply = final[attempt.key]
            if attempt.kind == "top_up" and reply.status == 201:
                expected[attempt.user] += attempt.credits
            elif attempt.kind == "predict" and reply.status == 200:
                expected[attempt.user] -= attempt.credits
        for user, token in enumerate(soak.tokens):
            got = await api.balance(token)
            if got != {"balance": expected[user], "held": 0, "available": expected[user]}:
                soak.problems.append(f"user {user}: balance {got}, expected {expected[user]}")
    for server in running:
        if await servers.stop(server) != 0:
            soak.problems.append(f"server exited uncleanly:\n{server.log_tail()}")

    lost, twice, changed = await check_log(soak, final)
    audit_exit, report = await run_audit(where)
    if audit_exit:
        soak.problems.append(f"audit: {report[-2000:]}")
    acknowledged = sum(a.reply is not None for a in soak.attempts.values())
    interrupted = await fetch(where, "SELECT id FROM tasks WHERE status = 'failed' "
                                     "AND error LIKE 'interrupted%'")
    return SoakFigures(
        store="PostgreSQL" if is_url(where) else "SQLite", processes=processes, kills=done,
        kills_holding_credits=soak.kills_holding_credits, interrupted_tasks=len(interrupted),
        keys=len(soak.attempts),
        acknowledged=acknowledged, unknown_replies=soak.unknown_replies, lost=lost,
        applied_twice=twice, changed_outcome=changed,
        problems=soak.problems[:10], audit_exit=audit_exit,
        seconds=round(time.monotonic() - started, 1))


async def public_ids(where: Where) -> PublicIds:
    """The servers' id codec: keyed from the session key they share (a file beside the
    SQLite database, or the shared secret in PostgreSQL), as web/app.py keys it."""
    if is_url(where):
        [row] = await fetch(where, "SELECT value FROM shared_secrets "
                                   "WHERE name = 'session_key'")
        return PublicIds(bytes.fromhex(str(row["value"])))
    return PublicIds(await asyncio.to_thread(Path(f"{where}.session-key").read_bytes))


async def check_log(soak: Soak, final: dict[str, Reply]) -> tuple[int, int, int]:
    """(lost, applied twice, changed outcome), from one read of the log and the task table."""
    ids = await public_ids(soak.where)
    events = await fetch(soak.where, "SELECT position, type_name, data, metadata FROM events "
                                     "ORDER BY position")
    tasks = {r["id"]: r for r in await fetch(soak.where,
                                              "SELECT id, status, cost_credits FROM tasks")}
    by_position = {e["position"]: e for e in events}
    per_key: Counter[str] = Counter()
    per_task: Counter[tuple[str, int]] = Counter()
    for event in events:
        operation = json.loads(event["metadata"]).get("operation_id") or ""
        if event["type_name"] in ("CreditsDeposited", "TaskSubmitted", "TaskRejected",
                                  "TaskCompletedAtOnce"):
            per_key[operation.removeprefix("api:")] += 1
        task_id = json.loads(event["data"]).get("task_id")
        if task_id is not None:
            per_task[(event["type_name"], task_id)] += 1
    twice = sum(1 for n in per_key.values() if n > 1) + sum(
        1 for n in per_task.values() if n > 1)
    lost = changed = 0
    for attempt in soak.attempts.values():
        outcome = final[attempt.key]
        if not attempt.is_outcome(outcome) or per_key[attempt.key] != 1:
            lost += 1  # every key reached the log once, and has a stored outcome
            continue
        if attempt.reply is None:
            continue
        if attempt.reply != outcome:
            changed += 1
        elif attempt.kind == "top_up":
            position = ids.parse(TRANSACTION, attempt.reply.body["transaction"]["id"])
            event = by_position.get(position)
            if event is None or event["type_name"] != "CreditsDeposited" or json.loads(
                    event["data"])["amount_credits"] != attempt.credits:
                lost += 1
        else:
            task = attempt.reply.body["task"]
            task_id = ids.parse(TASK, task["id"])
            row = tasks.get(task_id)
            terminals = {"completed": ("TaskCompleted", "TaskCompletedAtOnce"),
                         "rejected": ("TaskRejected",),
                         "failed": ("TaskFailed",)}[task["status"]]
            ended = sum(per_task[(terminal, task_id or 0)] for terminal in terminals)
            if row is None or (row["status"], row["cost_credits"]) != (
                    task["status"], task["cost"]) or ended != 1:
                lost += 1
    return lost, twice, changed
