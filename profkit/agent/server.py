"""The agent's HTTP/JSON endpoint (standard library only: it runs inside the watched program).

    GET  /agent                      who and what is here, and "status": "starting", "ready" or "failed: ..."
    GET  /snapshot                   a ConsoleSnapshot (profkit.results)
    GET  /task/<id>                  a TaskDetail; 404 once the task is gone
    GET  /awaits?duration=S&hz=H     every task's await chain sampled for S seconds, folded
    POST /cancel/<id>                cancel the task on the loop's thread
    POST /detach                     answer, then take every hook out and stop serving

Errors are ``{"error": "..."}`` with a 4xx/5xx status. Requests that carry an ``Origin`` header (a
web page's fetch) are refused, and so is a ``Host`` that is not a loopback name when the agent
listens on loopback: a page in the user's browser must not be able to cancel tasks through
DNS rebinding.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from .core import Agent

MAX_AWAITS_S = 600.0
MAX_HZ = 1000.0
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stopping must not wait for a console's idle kept-alive connection

    def __init__(self, address: tuple[str, int], agent: Agent, *, loopback: bool) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.agent = agent
        self.loopback = loopback
        super().__init__(address, Handler)

    def service_actions(self) -> None:
        # serve_forever calls this at least every poll_interval: the agent's clock.
        try:
            self.agent.tick()
        except Exception:  # noqa: BLE001,S110 - a failed tick must not end the server's thread
            pass

    def process_request(self, request: Any, client_address: Any) -> None:
        # ThreadingMixIn's, with the thread named: a thread dump of the program shows whose it is.
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name="profkit-agent-http", daemon=True)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback on the program's stderr.
        pass


def _number(query: dict[str, list[str]], name: str, default: float, low: float, high: float) -> float:
    raw = query.get(name, [str(default)])[-1]
    try:
        value = float(raw)
    except ValueError:
        raise HttpError(400, f"{name}={raw!r} is not a number") from None
    if not low < value <= high:
        raise HttpError(400, f"{name} must be above {low:g} and at most {high:g}, not {value:g}")
    return value


class Handler(BaseHTTPRequestHandler):
    server: AgentServer
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle kept-alive connection from the console is dropped after this
    server_version = "profkit-agent"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # never on the program's stderr

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _refused(self) -> str | None:
        if self.headers.get("Origin") is not None:
            return "requests from web pages are refused"
        if self.server.loopback:
            host = (self.headers.get("Host") or "").strip()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if host and name.lower() not in _LOOPBACK_NAMES:
                return f"Host {host!r} is not this machine's loopback"
        return None

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        after = None
        try:
            refused = self._refused()
            if refused is not None:
                raise HttpError(403, refused)
            url = urlsplit(self.path)
            status, body, after = self._route(method, url.path.rstrip("/") or "/", parse_qs(url.query))
        except HttpError as exc:
            status, body = exc.status, {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the program must not see the agent's failures
            status, body = 500, {"error": f"the agent failed: {type(exc).__name__}: {exc}"}
        self._send(status, body, close=after is not None)
        if after is not None:
            threading.Thread(target=after, name="profkit-agent-detach", daemon=True).start()

    def _send(self, status: int, body: Any, *, close: bool) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any, Any]:
        agent = self.server.agent
        parts = path.strip("/").split("/")
        if method == "GET" and path == "/agent":
            return 200, agent.info(), None
        if method == "POST" and path == "/detach":
            return 200, {"detached": True}, agent.stop
        if agent.stopped:
            raise HttpError(410, "the agent was detached")
        if method == "GET" and path == "/snapshot":
            return 200, agent.snapshot(), None
        if method == "GET" and len(parts) == 2 and parts[0] == "task":
            return 200, agent.task_detail(parts[1]), None
        if method == "GET" and path == "/awaits":
            duration = _number(query, "duration", 5.0, 0.0, MAX_AWAITS_S)
            hz = _number(query, "hz", 20.0, 0.0, MAX_HZ)
            return 200, agent.sample_awaits(duration, hz), None
        if method == "POST" and len(parts) == 2 and parts[0] == "cancel":
            return 200, agent.cancel(parts[1]), None
        known = {"/agent", "/snapshot", "/task/<id>", "/awaits", "/cancel/<id>", "/detach"}
        raise HttpError(404 if method in ("GET", "POST") else 405,
                        f"no {method} {path} here; the agent serves {', '.join(sorted(known))}")
