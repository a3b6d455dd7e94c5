"""Gates and fixtures for the end-to-end tests that drive the real clients.

Gates, checked once per session before any e2e test runs:
- this process must be in a network namespace with only loopback (the clients reach for
  outside hosts on their own), else every e2e test is SKIPPED with a loud reason;
- the pinned clients must be installed (scripts/install-clients.sh, a quick no-op when
  they are), else, if the npm registry is unreachable, every e2e test is SKIPPED;
  any other install failure FAILS every e2e test.

Run: scripts/netns-run /work/venv/bin/python -m pytest -m e2e tests/e2e
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Clients, ClientsUnavailable, Scenario, ensure_clients, isolation_problem
from .harness.clients import check_loopback

_E2E_DIR = Path(__file__).parent
_skip_reason: str | None = None
_install_error: str | None = None
_clients: Clients | None = None


@pytest.hookimpl(trylast=True)  # after `-m` deselection: gate only what will run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply the session gates to every selected test under tests/e2e: by path, so a test
    that forgot its `e2e` mark cannot start a client unguarded either."""
    global _skip_reason, _install_error, _clients
    e2e = [item for item in items if _E2E_DIR in item.path.parents]
    if not e2e:
        return
    _skip_reason = isolation_problem()
    if _skip_reason is None:
        try:
            _clients = ensure_clients()
        except ClientsUnavailable as error:
            _skip_reason = str(error)
        except RuntimeError as error:
            _install_error = str(error)
    if _skip_reason is not None:
        marker = pytest.mark.skip(reason=f"e2e SKIPPED: {_skip_reason}")
        for item in e2e:
            item.add_marker(marker)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Skips are easy to miss in a green run; say it where the run ends.
    if _skip_reason is not None:
        terminalreporter.write_sep("!", "ALL e2e TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_skip_reason, red=True)


@pytest.fixture(scope="session")
def clients() -> Clients:
    if _install_error is not None:
        pytest.fail(_install_error, pytrace=False)
    assert _clients is not None, "e2e gates did not run (collection hook)"
    check_loopback()
    return _clients


@pytest.fixture
def scenario(clients: Clients, tmp_path: Path) -> Iterator[Scenario]:
    """Agents of one test with a shared AGENTMAIL_HOME and tmux server; all torn down
    after the test, script errors of the scripted models raised then."""
    scenario = Scenario(clients=clients, root=tmp_path)
    try:
        yield scenario
    finally:
        scenario.close()
