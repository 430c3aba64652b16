"""Which processes sharing a database file are alive, told by advisory file locks.

Each process holds an exclusive lock on its own file for as long as it lives; the kernel drops
the lock when the process dies, however it dies, so a lock that can be taken is a dead owner.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path


class InstanceRegistry:
    def __init__(self, db_path: str | Path) -> None:
        self.folder = Path(f"{db_path}.instances")
        self.instance_id = uuid.uuid4().hex
        self._fd: int | None = None

    def register(self) -> str:
        self.folder.mkdir(exist_ok=True)
        self._fd = os.open(self.folder / f"{self.instance_id}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self.instance_id

    def is_alive(self, instance_id: str) -> bool:
        if instance_id == self.instance_id:
            return True
        path = self.folder / f"{instance_id}.lock"
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        path.unlink(missing_ok=True)
        return False

    def unregister(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            (self.folder / f"{self.instance_id}.lock").unlink(missing_ok=True)
