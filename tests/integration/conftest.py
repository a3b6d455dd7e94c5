from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import PrivateTmux, private_tmux


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def tmux_server() -> Iterator[PrivateTmux]:
    with private_tmux() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    (root / "src").mkdir()
    return root


@pytest.fixture
def server_env(tmp_path: Path, tmux_server: PrivateTmux) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "AGENTMAIL_HOME": str(tmp_path / "agentmail"),
        "HOME": str(home),
        "OXTAIL_TMUX_SOCKET": str(tmux_server.socket),
    }
