"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl on a temporary directory.

Off the network (Unix socket only), and by default without fsync, so a cluster starts in about
a second and a database is created in a few milliseconds. `durable=True` keeps fsync on for
the tests that prove an acknowledged write survives the machine losing power.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest

PORT = 5432  # only a socket file name here: the cluster listens on no TCP port
_names = itertools.count(1)


def find_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, or in Debian's versioned directory."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(
                       p).parent.parent.name.isdigit() else 0)
    return Path(found[-1]).parent if found else None


def require_bin_dir() -> Path:
    """The binaries, or a skip outside CI; CI must run every PostgreSQL test."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL (initdb, pg_ctl) is missing, and CI must run its tests")
        pytest.skip("PostgreSQL is missing (outside CI): `make postgres` installs it")
    return bin_dir


@dataclass
class PgCluster:
    bin_dir: Path
    root: Path  # holds data/, the socket and the log
    superuser: str = "postgres"
    _options: str = ""

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres", user: str | None = None) -> str:
        """A libpq-style URL over the socket: what ML_CABINET_DATABASE_URL would hold."""
        return (f"postgresql://{user or self.superuser}@/{database}"
                f"?host={quote(str(self.root), safe='/')}&port={PORT}")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # initdb and pg_ctl refuse to run as root: run them as the postgres user.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *args], check=True, capture_output=True, text=True,
                              timeout=120)

    @classmethod
    def start(cls, bin_dir: Path, *, durable: bool = False) -> PgCluster:
        root = Path(tempfile.mkdtemp(prefix="mlc-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        cluster = cls(bin_dir, root)
        cluster._run(str(bin_dir / "initdb"), "-D", str(cluster.data), "-U", "postgres",
                     "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        # Without fsync an acknowledged write still survives a crash of the server (it is in
        # the OS's cache), not of the machine. synchronous_commit stays on: off, a server
        # killed within ~200 ms of a COMMIT would lose it, and crash tests would lie.
        speed = [] if durable else ["-c fsync=off", "-c full_page_writes=off"]
        options = " ".join([
            "-c listen_addresses=''", f"-c unix_socket_directories={root}", f"-p {PORT}",
            "-c max_connections=300", *speed])
        cluster.start_server(options)
        return cluster

    def start_server(self, options: str | None = None) -> None:
        """Start (or restart, after stop()) with the options of the first start."""
        if options is not None:
            self._options = options
        self._run(str(self.bin_dir / "pg_ctl"), "start", "-w", "-D", str(self.data),
                  "-l", str(self.root / "server.log"), "-o", self._options)

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "stop", "-w", "-D", str(self.data), "-m", mode)

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    async def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t{os.getpid()}_{next(_names)}"
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        finally:
            await conn.close()
        return self.url(name)

    async def drop_database(self, url: str) -> None:
        name = url.split("/")[3].split("?")[0]
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@asynccontextmanager
async def fresh_database(cluster: PgCluster) -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped at the end."""
    url = await cluster.create_database()
    try:
        yield url
    finally:
        await cluster.drop_database(url)
