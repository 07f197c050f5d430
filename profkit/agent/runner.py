"""``python -m profkit.agent [OPTIONS] (SCRIPT | -m MODULE) ARGS...``: run a program with the agent in it.

The program runs in this process as ``python SCRIPT`` / ``python -m MODULE`` would run it (runpy,
its own ``sys.argv``, the script's folder first on ``sys.path``) and ends the same way: its exit
status, ``sys.exit`` message, or traceback (without this runner's frames); 130 on Ctrl-C. The agent
starts when its first event loop starts running. The agent's one line (its address) goes to stderr;
stdout stays the program's.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys

from .. import inprocess
from ..inprocess import exit_status, print_program_traceback, run_program
from . import core, launch

PROG = "python -m profkit.agent"
_OWN_FILES = {os.path.realpath(runpy.__file__), "<frozen runpy>", os.path.realpath(inprocess.__file__)}
_OWN_DIR = os.path.dirname(os.path.realpath(__file__)) + os.sep


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, usage=f"{PROG} [OPTIONS] (SCRIPT | -m MODULE) [ARGS...]",
                                description="Run a Python program with the profkit agent inside, for "
                                            "`profkit console`.")
    p.add_argument("--host", default=core.DEFAULT_HOST, help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=core.DEFAULT_PORT,
                   help="HTTP port of the agent (default %(default)s; 0 picks a free one, printed on stderr)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host (no authentication: anyone reaching it controls the program)")
    p.add_argument("--no-monitor", action="store_true", help="without aiomonitor (no telnet/web UI, no task history)")
    p.add_argument("--monitor-ports", default=",".join(map(str, core.DEFAULT_MONITOR_PORTS)),
                   help="aiomonitor's telnet, web UI and console ports (default %(default)s; 0 picks free ones)")
    return p


def split_argv(argv: list[str]) -> tuple[list[str], str | None, str | None, list[str]]:
    """(agent options, script, module, program args): the first non-option (or -m) starts the program."""
    takes_value = {"--host", "--port", "--monitor-ports"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest = argv[i + 1:]
            return argv[:i], (rest[0] if rest else None), None, rest[1:]
        if arg == "-m":
            rest = argv[i + 1:]
            return argv[:i], None, (rest[0] if rest else None), rest[1:]
        if arg.startswith("-m") and len(arg) > 2:
            return argv[:i], None, arg[2:], argv[i + 1:]
        if not arg.startswith("-") or arg == "-":
            return argv[:i], arg, None, argv[i + 1:]
        i += 2 if arg in takes_value else 1
    return argv, None, None, []


def _is_own(filename: str) -> bool:
    real = os.path.realpath(filename) if not filename.startswith("<") else filename
    return real in _OWN_FILES or real.startswith(_OWN_DIR)


def _monitor_ports(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise core.AgentConfigError(f"--monitor-ports {text!r} is not three ports TELNET,WEB,CONSOLE "
                                    "(e.g. 20101,20102,20103)")
    return int(parts[0]), int(parts[1]), int(parts[2])


def main(argv: list[str] | None = None) -> int:
    head, script, module, args = split_argv(sys.argv[1:] if argv is None else argv)
    opts = _parser().parse_args(head)
    if script is None and module is None:
        sys.stderr.write(f"{PROG}: give the program to run: SCRIPT [ARGS...] or -m MODULE [ARGS...]\n")
        return 2
    if script is not None and not os.path.isfile(script):
        sys.stderr.write(f"{PROG}: no such script: {script}\n")
        return 2
    try:
        config = core.Config(host=opts.host, port=opts.port, monitor=not opts.no_monitor,
                             monitor_ports=_monitor_ports(opts.monitor_ports), allow_remote=opts.allow_remote)
        core.check_host(config.host, config.allow_remote)
        # Taken ports are refused now, before the program runs, rather than when its loop starts.
        if config.port:
            core.claim_port(config.host, config.port, "agent")
        if config.monitor:
            for port, what in zip(config.monitor_ports, ("aiomonitor telnet", "aiomonitor web UI",
                                                         "aiomonitor console"), strict=True):
                if port:
                    core.claim_port(config.host, port, what)
    except core.AgentConfigError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    launch.install(config)
    try:
        run_program(script, module, args)
    except SystemExit as exc:
        return exit_status(exc.code)[0]
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # noqa: BLE001 - the program's own failure, shown as python would
        print_program_traceback(exc, runners=_is_own)
        return 1
    finally:
        core.stop()
        launch.uninstall()
    return 0
