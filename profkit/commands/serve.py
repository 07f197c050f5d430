"""profkit serve — run the bundled agent-memory engine."""

from __future__ import annotations

from pathlib import Path

from agentmem.engine import EngineConfig
from agentmem.errors import IncompatibleDatabase
from agentmem.server import is_loopback, serve

from ..console import err
from ..errors import ProfkitError, UsageError


def run_serve(*, host: str, port: int, db: Path, embedder: str, llm_url: str | None) -> None:
    if not is_loopback(host):
        err.print(f"[bold red]WARNING:[/] the engine will listen on [bold]{host}[/]: reachable from other machines, "
                  "with no authentication. Use --host 127.0.0.1 unless you mean it.")
    if not 0 < port < 65536:
        raise UsageError(f"--port must be 1-65535, got {port}")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfkitError(f"cannot create the folder of --db {db}: {exc.strerror}") from exc
    err.print(f"agentmem on [bold]http://{host}:{port}[/]  metrics: http://{host}:{port}/metrics  "
              f"API: http://{host}:{port}/openapi.json  db: {db}")
    try:
        serve(EngineConfig(db_path=str(db), embedder=embedder, llm_url=llm_url), host=host, port=port)
    except IncompatibleDatabase as exc:
        raise ProfkitError(str(exc)) from exc
