"""serve — run the bundled agent-memory engine until it is stopped."""

from __future__ import annotations

from pathlib import Path

from ..errors import ProfkitError, UsageError


def is_loopback(host: str) -> bool:
    from agentmem.server import is_loopback as engine_is_loopback

    return engine_is_loopback(host)


def run_serve(*, host: str, port: int, db: Path, embedder: str, llm_url: str | None) -> None:
    from agentmem.engine import EngineConfig
    from agentmem.errors import IncompatibleDatabase
    from agentmem.server import serve

    if not 0 < port < 65536:
        raise UsageError(f"--port must be 1-65535, got {port}")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfkitError(f"cannot create the folder of --db {db}: {exc.strerror}") from exc
    try:
        serve(EngineConfig(db_path=str(db), embedder=embedder, llm_url=llm_url), host=host, port=port)
    except IncompatibleDatabase as exc:
        raise ProfkitError(str(exc)) from exc
