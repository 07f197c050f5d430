"""serve — run the bundled agent-memory engine until it is stopped.

Everything the engine would otherwise find out while starting up (inside uvicorn, as a traceback
and exit 3) is checked first, so a wrong --db, --embedder or --port is one line that says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import socket
import sqlite3
from pathlib import Path

from ..errors import ProfkitError, TargetError, ToolMissing, UsageError

SQLITE_HEADER = b"SQLite format 3\x00"


def is_loopback(host: str) -> bool:
    from agentmem.server import is_loopback as engine_is_loopback

    return engine_is_loopback(host)


def check_db(db: Path) -> None:
    """A path the engine can use: missing (it is created), empty, or an SQLite database it can read."""
    if db.is_dir():
        raise UsageError(f"--db {db} is a folder; give the path of a database file (it is created if missing)")
    if not db.exists() or db.stat().st_size == 0:
        return
    try:
        with open(db, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise UsageError(f"--db {db} cannot be read: {exc.strerror}") from exc
    if header != SQLITE_HEADER:
        raise UsageError(f"--db {db} is not an SQLite database; give a new file name or the engine's database")
    from agentmem.storage import SCHEMA_VERSION

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall()) if has_meta else {}
    except sqlite3.Error as exc:
        raise UsageError(f"--db {db} cannot be opened as an SQLite database: {exc}") from exc
    version = meta.get("schema_version")
    if version is not None and str(version).isdigit() and int(version) > SCHEMA_VERSION:
        raise UsageError(f"--db {db} was written by a newer engine (schema v{version}, this one reads "
                         f"v{SCHEMA_VERSION}); use a newer profkit or a new --db")


def check_embedder(spec: str) -> None:
    """'hashing', or 'st:MODEL' with sentence-transformers installed and, for a path, a model there."""
    if spec == "hashing":
        return
    if not spec.startswith("st:") or not spec[3:]:
        raise UsageError(f"--embedder {spec!r} is not an embedder: use 'hashing' (the default) or 'st:<local model>'")
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ToolMissing("--embedder st:... needs sentence-transformers: pip install 'profkit[embeddings]'")
    model = spec[3:]
    if ("/" in model or model.startswith(".")) and not Path(model).expanduser().exists():
        raise UsageError(f"--embedder {spec}: there is no model at {model}; give the folder of a local "
                         "sentence-transformers model (nothing is downloaded at run time)")


def check_port(host: str, port: int) -> None:
    """The address can be bound now (the way uvicorn binds it), or one line that says why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host} is not an address this machine can listen on: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {host} is already in use (another server?); choose another "
                                 "--port") from exc
            if exc.errno == errno.EACCES:
                raise UsageError(f"not allowed to listen on port {port}: ports below 1024 need root; choose "
                                 "another --port") from exc
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def check_serve(*, host: str, port: int, db: Path, embedder: str) -> None:
    check_embedder(embedder)
    check_db(db)
    check_port(host, port)


def start_monitor(agent_port: int, monitor_ports: tuple[int, int, int]) -> None:
    """The profkit agent (and aiomonitor) in the engine, on loopback, started with its event loop."""
    from ..agent import core, launch

    for p in (agent_port, *monitor_ports):
        if p:
            check_port("127.0.0.1", p)
    launch.install(core.Config(host="127.0.0.1", port=agent_port, monitor_ports=monitor_ports))


def run_serve(*, host: str, port: int, db: Path, embedder: str, llm_url: str | None, monitor: bool = False,
              agent_port: int = 20104, monitor_ports: tuple[int, int, int] = (20101, 20102, 20103)) -> None:
    """Serve until stopped; call :func:`check_serve` first for one-line answers to a bad setup.

    With ``monitor`` the engine runs on asyncio's own loop (uvloop runs callbacks in compiled code,
    where no step can be timed) with the profkit agent inside, for ``profkit console``.
    """
    from agentmem.engine import EngineConfig
    from agentmem.errors import IncompatibleDatabase
    from agentmem.server import serve

    if monitor:
        start_monitor(agent_port, monitor_ports)

    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder of --db {db}: {exc.strerror}") from exc
    try:
        serve(EngineConfig(db_path=str(db), embedder=embedder, llm_url=llm_url), host=host, port=port,
              loop="asyncio" if monitor else "uvloop")
    except IncompatibleDatabase as exc:
        raise ProfkitError(str(exc)) from exc
    except SystemExit as exc:
        # uvicorn ends with exit 3 when the application fails to start; its log above says why.
        if exc.code not in (0, None):
            raise TargetError("the engine failed to start; its error is above") from None
        raise
