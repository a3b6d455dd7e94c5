"""Shared fixtures: every test runs against its own temporary state root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_py.layout import Layout


@pytest.fixture
def state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "agentmail"
    monkeypatch.setenv("AGENTMAIL_HOME", str(root))
    yield root


@pytest.fixture
def layout(state_root: Path) -> Layout:
    return Layout(state_root)
