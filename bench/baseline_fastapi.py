"""The baseline: the same job done the way a typical course project or FastAPI clone does it.

FastAPI + uvicorn + SQLAlchemy 2.0 ORM with a synchronous session per request (the FastAPI
tutorial's `get_db` dependency), `def` endpoints run in the thread pool, a `users` table with a
mutable `balance` column, bearer tokens looked up in a `tokens` table, and a charge that checks
the balance in Python and then runs `UPDATE users SET balance = balance - cost`.

It is written to be a fair contender, not a straw man: same durability as ML Cabinet (WAL,
synchronous=FULL unless BASELINE_SYNCHRONOUS says otherwise), the same per-item validation
(finite real numbers; booleans, strings, null, NaN and infinities are reported, not charged),
the same two models and prices, a task recorded as pending before the model runs and a charge
with a transaction row after it. What it does not have is what ML Cabinet adds: an audit trail,
holds, idempotency keys, and a charge that cannot race.

Run: BASELINE_DB=/tmp/b.db uvicorn --app-dir bench baseline_fastapi:app --port 8001
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import ForeignKey, String, Text, create_engine, event, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DATABASE_PATH = os.environ.get("BASELINE_DB", "baseline.db")
SYNCHRONOUS = os.environ.get("BASELINE_SYNCHRONOUS", "FULL").upper()
assert SYNCHRONOUS in ("FULL", "NORMAL", "OFF"), SYNCHRONOUS
# 0 keeps SQLAlchemy's default pool (5 + 10 overflow), as the tutorials do. Under more
# concurrent requests than that, the sessions held by requests waiting for a thread starve the
# threads waiting for a connection: every request then fails after the pool's 30 s timeout
# (fastapi/fastapi#3205). A pool larger than the client count avoids it.
POOL_SIZE = int(os.environ.get("BASELINE_POOL_SIZE", "0"))

engine = create_engine(
    f"sqlite:///{DATABASE_PATH}", connect_args={"check_same_thread": False},
    **({"pool_size": POOL_SIZE, "max_overflow": 0} if POOL_SIZE else {}))


@event.listens_for(engine, "connect")
def set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    cursor.close()


SessionLocal = sessionmaker(bind=engine, autoflush=False)


class Base(DeclarativeBase):
    pass


def now() -> datetime:
    return datetime.now(UTC)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    balance: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Token(Base):
    __tablename__ = "tokens"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=now)


class Transaction(Base):
    __tablename__ = "transactions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=now)


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    model_id: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    input_data: Mapped[str] = mapped_column(Text)
    output_data: Mapped[str | None] = mapped_column(Text)
    invalid: Mapped[str] = mapped_column(Text)
    cost: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=now)


Base.metadata.create_all(engine)


class MLModel:
    def __init__(self, name: str, price: int, max_items: int,
                 predict: Callable[[list[float]], list[float]]) -> None:
        self.name, self.price, self.max_items, self.predict = name, price, max_items, predict


MODELS = {
    1: MLModel("Doubler", 1, 1000, lambda xs: [x * 2 for x in xs]),
    2: MLModel("Linear trend", 2, 500, lambda xs: [3.0 * x + 1.0 for x in xs]),
}


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    # Cheap on purpose: logins are not what this benchmark measures.
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)
    return f"{salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    salt, _ = stored.split("$")
    return secrets.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)


def check_item(value: Any) -> str | None:
    """Why an item is not a number the model can take, or None when it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "not a number"
    try:
        if not math.isfinite(float(value)):
            return "not a finite number"
    except OverflowError:
        return "the number is beyond the float range"
    return None


app = FastAPI(title="ML service (baseline)")


def get_db() -> Iterator[Session]:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


DB = Annotated[Session, Depends(get_db)]


def get_current_user(db: DB, authorization: Annotated[str | None, Header()] = None) -> User:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(status_code=401, detail="Not authenticated")
    token = db.get(Token, authorization.removeprefix("Bearer "))
    if token is None:
        raise HTTPException(status_code=401, detail="Invalid token")
    user = db.get(User, token.user_id)
    if user is None:
        raise HTTPException(status_code=401, detail="Invalid token")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


class Credentials(BaseModel):
    username: str = Field(min_length=3, max_length=32)
    password: str = Field(min_length=8, max_length=256)


class TopUpIn(BaseModel):
    amount: int = Field(gt=0, le=1_000_000, strict=True)


class PredictIn(BaseModel):
    model_id: int
    data: list[Any]


class BalanceOut(BaseModel):
    balance: int


class TaskOut(BaseModel):
    id: int
    model_id: int
    status: str
    input_data: list[float]
    output_data: list[float] | None
    cost: int
    created_at: datetime


class PredictionOut(BaseModel):
    index: int
    input: float
    output: float


class PredictOut(BaseModel):
    task: TaskOut
    predictions: list[PredictionOut]
    invalid: list[dict[str, Any]]
    cost: int
    balance: int


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/register", status_code=201)
def register(body: Credentials, db: DB) -> dict[str, Any]:
    if db.scalar(select(User).where(User.username == body.username)) is not None:
        raise HTTPException(status_code=409, detail="Username taken")
    user = User(username=body.username, password_hash=hash_password(body.password))
    db.add(user)
    db.commit()
    db.refresh(user)
    return {"id": user.id, "username": user.username, "balance": user.balance}


@app.post("/login")
def login(body: Credentials, db: DB) -> dict[str, str]:
    user = db.scalar(select(User).where(User.username == body.username))
    if user is None or not check_password(body.password, user.password_hash):
        raise HTTPException(status_code=401, detail="Wrong username or password")
    token = Token(token=secrets.token_hex(32), user_id=user.id)
    db.add(token)
    db.commit()
    return {"access_token": token.token, "token_type": "bearer"}


@app.get("/balance", response_model=BalanceOut)
def balance(user: CurrentUser) -> BalanceOut:
    return BalanceOut(balance=user.balance)


@app.post("/top-up", response_model=BalanceOut, status_code=201)
def top_up(body: TopUpIn, user: CurrentUser, db: DB) -> BalanceOut:
    db.execute(update(User).where(User.id == user.id)
               .values(balance=User.balance + body.amount))
    db.add(Transaction(user_id=user.id, amount=body.amount, kind="top_up",
                       description="Top-up"))
    db.commit()
    db.refresh(user)
    return BalanceOut(balance=user.balance)


@app.post("/predict", response_model=PredictOut)
def predict(body: PredictIn, user: CurrentUser, db: DB) -> PredictOut:
    model = MODELS.get(body.model_id)
    if model is None:
        raise HTTPException(status_code=404, detail="Model not found")
    if not body.data or len(body.data) > model.max_items:
        raise HTTPException(status_code=422, detail=f"Send 1 to {model.max_items} items")
    values, indexes, invalid = [], [], []
    for index, item in enumerate(body.data):
        reason = check_item(item)
        if reason is None:
            values.append(float(item))
            indexes.append(index)
        else:
            invalid.append({"index": index, "value": repr(item)[:60], "error": reason})
    if not values:
        raise HTTPException(status_code=422, detail={"invalid": invalid})
    cost = model.price * len(values)
    if user.balance < cost:
        raise HTTPException(status_code=402, detail="Insufficient balance")

    task = Task(user_id=user.id, model_id=body.model_id, status="pending",
                input_data=json.dumps(values), output_data=None, invalid=json.dumps(invalid))
    db.add(task)
    db.commit()

    output = model.predict(values)

    db.execute(update(User).where(User.id == user.id).values(balance=User.balance - cost))
    task.status, task.output_data, task.cost = "completed", json.dumps(output), cost
    db.add(Transaction(user_id=user.id, amount=-cost, kind="charge",
                       description=f"Prediction #{task.id}: {model.name}"))
    db.commit()
    db.refresh(user)
    db.refresh(task)
    return PredictOut(
        task=TaskOut(id=task.id, model_id=task.model_id, status=task.status,
                     input_data=values, output_data=output, cost=task.cost,
                     created_at=task.created_at),
        predictions=[PredictionOut(index=i, input=x, output=y)
                     for i, x, y in zip(indexes, values, output, strict=True)],
        invalid=invalid, cost=cost, balance=user.balance)
