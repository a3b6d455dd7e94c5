"""Where the real clients are, and whether this process may run them.

Two gates before any real client starts: the process must sit in a network namespace with
nothing but loopback (the clients reach for outside hosts on their own), and the pinned
clients must be installed (scripts/install-clients.sh, idempotent and quick when done).
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[3]
INSTALL_SCRIPT: Final = REPO / "scripts" / "install-clients.sh"
NETNS_RUN: Final = REPO / "scripts" / "netns-run"
# install-clients.sh exits with this when the npm registry cannot be reached.
EXIT_REGISTRY_UNREACHABLE: Final = 3


@dataclass(frozen=True)
class Clients:
    claude: Path
    codex: Path

    @property
    def bin_dir(self) -> Path:
        """The dir holding both launchers; agents get it on PATH, as users have the clients
        on PATH (our server and hooks may call `codex queue`)."""
        return self.claude.parent


class ClientsUnavailable(Exception):
    """The clients are not installed and cannot be: the e2e tests skip."""


def interfaces() -> list[str]:
    """Network interfaces of this process's namespace.

    Read from /proc/self/net/dev, which always shows the caller's namespace. /sys/class/net
    shows the namespace of whoever mounted sysfs, so after a bare `unshare -n` it still lists
    the host's interfaces (scripts/netns-run remounts sysfs so both agree).
    """
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines if ":" in line)


def isolation_problem() -> str | None:
    """Why real clients must not run here, or None when only loopback exists."""
    others = [name for name in interfaces() if name != "lo"]
    if others:
        return (
            f"network namespace has interfaces other than lo ({', '.join(others)}): real "
            f"clients may only run with loopback alone; run the tests through {NETNS_RUN}"
        )
    return None


def check_loopback() -> None:
    """Raise if 127.0.0.1 does not work (a new namespace starts with lo down)."""
    try:
        with (
            socket.create_server(("127.0.0.1", 0)) as server,
            socket.create_connection(server.getsockname(), timeout=2),
        ):
            pass
    except OSError as error:
        raise RuntimeError(
            f"loopback is not usable in this namespace ({error}); "
            f"`ip link set lo up` or run through {NETNS_RUN}"
        ) from error


def ensure_clients() -> Clients:
    """Run install-clients.sh (a no-op when installed) and return the binaries.

    Raises ClientsUnavailable when the registry is unreachable and nothing is installed,
    RuntimeError on any other failure.
    """
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900
    )
    if result.returncode == EXIT_REGISTRY_UNREACHABLE:
        raise ClientsUnavailable(
            "real clients are not installed and the npm registry is unreachable; run "
            f"{INSTALL_SCRIPT} with network access first: {result.stderr.strip()}"
        )
    if result.returncode != 0:
        raise RuntimeError(
            f"{INSTALL_SCRIPT} failed (exit {result.returncode}):\n{result.stderr.strip()}"
        )
    claude, codex = (Path(line) for line in result.stdout.split())
    return Clients(claude=claude, codex=codex)
