"""Store errors: driver errors are wrapped once, here, into these."""


class StoreError(Exception):
    """Base of every error the event store raises."""


class ConcurrencyError(StoreError):
    """The stream moved on since it was read: the expected version is stale."""

    def __init__(self, stream_id: str, expected_version: int) -> None:
        super().__init__(f"stream {stream_id!r} is not at version {expected_version}")
        self.stream_id = stream_id
        self.expected_version = expected_version


class StoreUnavailable(StoreError):
    """The store cannot write now (disk full, read-only file, lock timeout); retry later."""


class StoreCorrupted(StoreError):
    """The database file or the event log is damaged; nothing read from it is trusted."""
