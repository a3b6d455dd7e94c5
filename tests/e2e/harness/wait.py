"""Waiting on a condition with a deadline: the only way the e2e harness waits.

Fixed sleeps are either too short on a loaded 2-core machine or waste time everywhere else;
polling a condition until a deadline is both fast and patient.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, TypeVar

T = TypeVar("T")

POLL_INTERVAL: Final = 0.05


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline (an AssertionError so pytest shows it
    as a test failure with the message, not as an error in the harness)."""


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    describe: Callable[[], str] | None = None,
    interval: float = POLL_INTERVAL,
) -> T:
    """Call `condition` until it returns something truthy and return that.

    `what` names the awaited condition in the timeout message; `describe` adds the state
    that helps diagnose a timeout (a pane capture, the requests seen so far).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n{describe()}" if describe is not None else ""
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)
