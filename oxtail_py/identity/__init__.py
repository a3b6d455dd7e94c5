"""Who am I: the client above this server and its session id, resolved with a proof.

    client.py      which client (Claude Code / Codex) runs above a process
    drops.py       the SessionStart drop and the `oxtail-py claim` file
    claims.py      whether an explicit claim may take an id (never another agent's)
    resolver.py    the strategies and the rule for following /clear (read its docstring)
    resolution.py  the typed answer: Resolution(session_id, source, proof, ...)
    follow.py      notice a move of identity without waiting for a tool call
"""

from __future__ import annotations

from oxtail_py.identity.claims import ClaimRefusedError, check_claim, write_claim
from oxtail_py.identity.client import CLAUDE, CODEX, ClientProcess, detect_client
from oxtail_py.identity.drops import Drop, find_drop, read_client_drop
from oxtail_py.identity.resolution import Adoption, Resolution, Source
from oxtail_py.identity.resolver import IdentityResolver

__all__ = [
    "CLAUDE",
    "CODEX",
    "Adoption",
    "ClaimRefusedError",
    "ClientProcess",
    "Drop",
    "IdentityResolver",
    "Resolution",
    "Source",
    "check_claim",
    "detect_client",
    "find_drop",
    "read_client_drop",
    "write_claim",
]
