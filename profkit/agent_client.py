"""Talk to a profkit agent (``profkit.agent``) over its loopback HTTP endpoint, and find one by pid."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, cast

import httpx

from .errors import AgentUnreachable, TargetError, UsageError
from .results import ConsoleSnapshot, TaskDetail

DEFAULT_AGENT = "127.0.0.1:20104"
# A snapshot of a process with hundreds of thousands of tasks takes a while to build and send.
TIMEOUT = 30.0
PROBE_TIMEOUT = 1.0
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--agent {text!r} is not HOST:PORT (e.g. {DEFAULT_AGENT})")
    return host.strip("[]"), int(port)


class AgentClient:
    def __init__(self, address: str, *, timeout: float = TIMEOUT) -> None:
        self.host, self.port = parse_address(address)
        self.address = address
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        self._http = httpx.Client(base_url=f"http://{netloc}:{self.port}", timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, timeout: float | None = None, **params: Any) -> Any:
        try:
            response = self._http.request(method, path, params=params or None,
                                          timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
        except httpx.ConnectError:
            raise AgentUnreachable(f"nothing is listening at {self.address}: start the program with the agent "
                            "(`python -m profkit.agent PROGRAM` or `import profkit.agent.auto`), or use --pid PID "
                            "to inject it") from None
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
            raise AgentUnreachable(f"the agent at {self.address} dropped the connection (did the process exit?)") \
                from None
        except httpx.TimeoutException:
            raise AgentUnreachable(f"the agent at {self.address} did not answer within the timeout: the process may "
                                   "be stopped or its GIL held by native code") from None
        try:
            body = response.json()
        except ValueError:
            raise TargetError(f"{self.address} answered, but not as a profkit agent (HTTP {response.status_code})") \
                from None
        if response.status_code >= 400:
            raise TargetError(f"the agent at {self.address} refused {method} {path}: "
                              f"{body.get('error') if isinstance(body, dict) else body}")
        return body

    def info(self) -> dict[str, Any]:
        body = self._call("GET", "/agent")
        if not isinstance(body, dict) or body.get("agent") != "profkit":
            raise TargetError(f"{self.address} answered, but not as a profkit agent")
        return body

    def snapshot(self) -> ConsoleSnapshot:
        return cast(ConsoleSnapshot, self._call("GET", "/snapshot"))

    def task(self, task_id: str) -> TaskDetail | None:
        try:
            return cast(TaskDetail, self._call("GET", f"/task/{task_id}"))
        except AgentUnreachable:
            raise
        except TargetError:
            return None

    def awaits(self, duration: float, hz: float) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "/awaits", timeout=duration + TIMEOUT,
                                               duration=duration, hz=hz))

    def cancel(self, task_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("POST", f"/cancel/{task_id}"))

    def detach(self) -> None:
        with contextlib.suppress(AgentUnreachable):
            self._call("POST", "/detach")


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except PermissionError:
        raise TargetError(f"may not read the sockets of pid {pid}: run as its user or as root") from None
    except OSError:
        return inodes
    for fd in entries:
        with contextlib.suppress(OSError):
            link = str(fd.readlink())
            if link.startswith("socket:["):
                inodes.add(link[len("socket:["):-1])
    return inodes


def listening_ports(pid: int) -> list[tuple[str, int]]:
    """The loopback TCP ports ``pid`` listens on (from /proc: no tool needed)."""
    inodes = _socket_inodes(pid)
    found: list[tuple[str, int]] = []
    for table, host in (("tcp", "127.0.0.1"), ("tcp6", "::1")):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN or fields[9] not in inodes:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            found.append((host, port))
    return found


def find_agent(pid: int) -> str | None:
    """The address of the profkit agent inside ``pid``, if one is running there."""
    for host, port in listening_ports(pid):
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        client = AgentClient(address, timeout=PROBE_TIMEOUT)
        try:
            if client.info().get("pid") == pid:
                return address
        except (TargetError, AgentUnreachable):
            continue  # another of its ports (aiomonitor's telnet UI never answers HTTP)
        finally:
            client.close()
    return None
