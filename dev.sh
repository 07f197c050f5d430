#!/usr/bin/env bash
# The project's two entry points (see README):
#   ./dev.sh run   — set up .venv and run the main job: profile the bundled engine for this commit
#   ./dev.sh test  — set up .venv (and the system tools the tests drive) and run the whole suite
# Extra arguments go to `profkit ci` or to pytest.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${PROFKIT_VENV:-.venv}
LOCK=constraints.txt

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {
    command -v apt-get >/dev/null || return 1
    local quiet=(-y -qq --no-install-recommends -o Dpkg::Use-Pty=0)
    DEBIAN_FRONTEND=noninteractive as_root apt-get install "${quiet[@]}" "$@" >/dev/null 2>&1 \
        || { as_root apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive as_root apt-get install "${quiet[@]}" "$@" >/dev/null; }
}

pick_python() {
    for py in python3.11 python3.12 python3.13 python3; do
        if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "$py"; return 0
        fi
    done
    echo "dev.sh: Python 3.11 or newer is required (apt-get install python3)" >&2
    return 1
}

setup() {
    local py
    py=$(pick_python)
    if [ ! -x "$VENV/bin/python" ]; then
        # Debian splits venv/ensurepip into python3-venv.
        if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
            echo "dev.sh: installing python3-venv" >&2
            apt_install python3-venv || { echo "dev.sh: install python3-venv, then retry" >&2; exit 1; }
        fi
        "$py" -m venv "$VENV"
    fi
    install_locked
}

# Every version installed, pip and the build backend (setuptools) included, is pinned in
# constraints.txt (the lock, see README). pip's own output goes to a log that is shown only when the
# install fails; on success two lines say what happened and how long it took.
install_locked() {
    local log=$VENV/dev-install.log start=$SECONDS pip=("$VENV/bin/python" -m pip)
    local opts=(--disable-pip-version-check --progress-bar off -c "$LOCK")
    echo "dev.sh: installing dependencies (locked: $LOCK) into $VENV ..." >&2
    # First the locked pip: it is the one that knows --build-constraint (pip >= 25.3).
    if ! { "${pip[@]}" install "${opts[@]}" --upgrade pip \
            && "${pip[@]}" install "${opts[@]}" --build-constraint "$LOCK" -e ".[dev]"; } >"$log" 2>&1; then
        echo "dev.sh: installing dependencies failed; the end of pip's log ($log):" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
    echo "dev.sh: done in $((SECONDS - start)) s" >&2
}

# The suite drives a real Prometheus server. Debian's package is unpacked into .tools/ rather than
# installed: installing it would also start a system-wide daemon listening on every interface.
fetch_prometheus() {
    if command -v prometheus >/dev/null; then
        export PROMETHEUS_BIN=${PROMETHEUS_BIN:-$(command -v prometheus)}
        return 0
    fi
    local bin=.tools/prometheus/usr/bin/prometheus
    if [ ! -x "$bin" ] && command -v apt-get >/dev/null; then
        echo "dev.sh: fetching Debian's prometheus package into .tools/ for the scrape test" >&2
        mkdir -p .tools
        ( cd .tools && { apt-get download prometheus >/dev/null 2>&1 \
            || { as_root apt-get update -qq >/dev/null && apt-get download prometheus >/dev/null; }; } \
            && dpkg-deb -x prometheus_*.deb prometheus && rm -f prometheus_*.deb ) \
            || echo "dev.sh: could not fetch prometheus; its test will be skipped" >&2
    fi
    if [ -x "$bin" ]; then
        PROMETHEUS_BIN=$(pwd)/$bin
        export PROMETHEUS_BIN
    fi
}

case "${1:-}" in
    run)
        shift
        setup
        exec "$VENV/bin/profkit" ci "$@"
        ;;
    test)
        shift
        setup
        fetch_prometheus
        # Programs the tests drive for real: Chromium opens the flamegraph SVG, gdb or lldb lets
        # memray attach to a live process (Debian 12's gdb cannot on CPUs with AMX registers, so
        # both), valgrind's callgrind_annotate reads the callgrind export, go tool pprof reads the pprof file.
        missing=()
        command -v chromium >/dev/null || missing+=(chromium)
        command -v gdb >/dev/null || missing+=(gdb)
        command -v lldb >/dev/null || missing+=(lldb)
        command -v callgrind_annotate >/dev/null || missing+=(valgrind)
        command -v go >/dev/null || missing+=(golang-go)
        if [ ${#missing[@]} -gt 0 ]; then
            echo "dev.sh: installing ${missing[*]} (Debian packages) for the tests" >&2
            apt_install "${missing[@]}" || echo "dev.sh: could not install ${missing[*]}; tests needing them skip" >&2
        fi
        # Two workers, one per core; a module stays on one worker (--dist loadscope), so a module's
        # expensive fixture (an engine, a bench run) is built once. `./dev.sh test -n 0` runs serially.
        # --durations: the slowest tests, for whoever wants the suite faster.
        exec "$VENV/bin/python" -m pytest -n 2 --dist loadscope --durations=15 "$@"
        ;;
    *)
        echo "usage: ./dev.sh run|test [args...]" >&2
        exit 2
        ;;
esac
