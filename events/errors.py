"""Store errors: driver errors are wrapped once, here, into these."""


class StoreError(Exception):
    """Base of every error the event store raises."""


class ConcurrencyError(StoreError):
    """The stream moved on since it was read: the expected version is stale."""

    def __init__(self, stream_id: str, expected_version: int) -> None:
        super().__init__(f"stream {stream_id!r} is not at version {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version


class UniqueViolation(StoreError):
    """A row broke a UNIQUE or PRIMARY KEY constraint (outside the events table, where that
    is a ConcurrencyError). Callers use it as a backstop: another writer got there first."""


class StoreUnavailable(StoreError):
    """The store cannot write now (disk full, read-only file, lock timeout); retry later."""


class StoreCorrupted(StoreError):
    """The database file or the event log is damaged; nothing read from it is trusted."""
