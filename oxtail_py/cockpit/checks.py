"""`status --check`: what is wrong in a snapshot, one Problem per fault.

Faults: an ask still waiting past the longest timeout an ask may have
(OXTAIL_ASK_PEER_MAX_TIMEOUT_MS: the ledger does not record each ask's own); mail
unread for more than N minutes at an agent whose hooks say it is idle (nothing will
deliver it until it is woken); a wait-for cycle (already in the snapshot); hooks
missing, stale or untrusted for a client that has an agent here (hooks_install's
checks: the same ones a server logs at start, and doctor runs).
"""

from __future__ import annotations

from typing import Final

from oxtail_py.cockpit.model import Problem, Snapshot
from oxtail_py.cockpit.render_text import clock
from oxtail_py.settings import Settings

DEFAULT_STALE_MINUTES: Final = 10.0


def check(snap: Snapshot, settings: Settings, *, stale_minutes: float) -> list[Problem]:
    """Every problem of the snapshot plus the time- and wiring-based ones."""
    problems = list(snap.problems)
    for edge in snap.edges:
        age = snap.taken_at - edge.since
        if edge.timeout_s is not None and age > edge.timeout_s:
            problems.append(Problem(
                "ask-overdue", snap.name_of(edge.waiter),
                f"{snap.name_of(edge.waiter)} has waited {age:.0f}s (since {clock(edge.since)})"
                f" for {snap.name_of(edge.target)} to answer {edge.ref}, past the longest "
                f"timeout an ask may have ({edge.timeout_s:.0f}s): its server is stuck; "
                "restart that agent",
            ))
    for agent in snap.agents:
        if agent.state != "idle" or agent.oldest_unread is None:
            continue
        age = snap.taken_at - agent.oldest_unread
        if age > stale_minutes * 60:
            problems.append(Problem(
                "stale-unread", agent.name,
                f"{agent.name} is idle with {agent.unread} unread message(s), the oldest "
                f"since {clock(agent.oldest_unread)} ({age / 60:.0f} min): wake it with "
                f"`oxtail-py send {agent.name} 'read your inbox' --wake`",
            ))
    clients = {a.client for a in snap.agents}
    if clients & {"claude", "codex"}:
        from oxtail_py.hooks_install import check_codex, hooks_problem  # tomlkit: only here

        problem = hooks_problem(settings) if "claude" in clients else None
        if problem:
            problems.append(Problem("claude-hooks", "claude", problem))
        codex = check_codex(settings) if "codex" in clients else None
        if codex is not None and not codex.ok:
            problems.append(Problem("codex-hooks", "codex", f"{codex.problem}: {codex.sentence}"))
    return problems


def failing(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "fail"]
