"""``accesswatch dashboard``: start the Streamlit app on a port, over the configured store."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType

from dashboard.auth import hash_password
from models.config import Settings

APP = Path(__file__).resolve().with_name("app.py")
DEMO_PASSWORD = "accesswatch-demo"  # of the demo users in configs/default.toml


def streamlit_command(address: str, port: int) -> list[str]:
    return [
        sys.executable,
        # -P: the current directory is not put on the import path, so a folder there named like one of the
        # product's packages (a clone called accesswatch, beside it) does not hide the installed one
        "-P",
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",  # a server, not a development session
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",  # nothing leaves the machine
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--client.showErrorDetails",
        "false",  # tracebacks may carry customer data: they go to the log
        "--theme.base",
        "light",
    ]


def environment(settings: Settings, config: Path | None, demo: bool) -> dict[str, str]:
    """The app reads its settings as every command does; the validated data dir is passed on."""
    env = dict(os.environ)
    env["ACCESSWATCH_DATA_DIR"] = str(Path(settings.data_dir).resolve())
    if config is not None:
        env["ACCESSWATCH_CONFIG"] = str(Path(config).resolve())
    if demo:
        env["ACCESSWATCH_DASHBOARD__DEMO_SIGN_IN"] = "true"
    return env


def unavailable(address: str, port: int) -> str | None:
    """Why the server could not listen on ``address:port`` (another server has it), or None.

    Tried before the address is announced: Streamlit would say "Port 8501 is not available" only after it.
    SO_REUSEADDR as Tornado binds, so a port left in TIME_WAIT by a server just stopped is not refused.
    """
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(where)
    except OSError as exc:  # gaierror is an OSError
        return exc.strerror or str(exc)
    return None


def run(settings: Settings, config: Path | None, demo: bool) -> int:
    """Serve on ``dashboard.address`` and ``dashboard.port`` (``--address`` and ``--port`` override them)."""
    address, port = settings.dashboard.address, settings.dashboard.port
    problem = unavailable(address, port)
    if problem:
        print(f"accesswatch dashboard: cannot listen on {address} port {port}: {problem}", file=sys.stderr)
        return 1
    shown = "localhost" if address in ("127.0.0.1", "0.0.0.0", "::") else address
    print(f"accesswatch dashboard: http://{shown}:{port}/  (store in {settings.data_dir})", flush=True)
    if demo or settings.dashboard.demo_sign_in:
        print(
            f"  demo sign-in: demo / {DEMO_PASSWORD} (admin); analyst / {DEMO_PASSWORD}; auditor / {DEMO_PASSWORD}",
            flush=True,
        )
    elif not settings.dashboard.users and not settings.dashboard.oidc.enabled:
        print(
            "  no user can sign in: add [dashboard.users.<name>] (accesswatch dashboard --hash-password)"
            " or [dashboard.oidc]",
            file=sys.stderr,
            flush=True,
        )
    store_path = Path(settings.data_dir) / settings.store.sqlite.filename
    if settings.store.kind == "sqlite" and not store_path.exists():  # a typo, or `make demo` about to make it
        print(
            f"  no store at {store_path} yet: the pages say so until replay, run or demo makes one",
            file=sys.stderr,
            flush=True,
        )
    process = subprocess.Popen(streamlit_command(address, port), env=environment(settings, config, demo))

    # SIGTERM (make, systemd) stops the server too, not only this process
    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def print_hash() -> int:
    """Read a password (twice at a terminal, once from a pipe) and print its salted hash for the config."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("accesswatch: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        print(hash_password(password))
    except ValueError as exc:
        print(f"accesswatch: {exc}", file=sys.stderr)
        return 1
    return 0
