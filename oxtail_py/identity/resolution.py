"""The answer to "who am I": a session id, the strategy that found it, and its proof."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Source(StrEnum):
    CLAIM = "claim"  # claim_session / register_my_session / `oxtail-py claim`
    ENV = "env"  # CLAUDE_CODE_SESSION_ID given to this server at launch
    DROP = "drop"  # the SessionStart drop of this server's own client process
    META = "meta"  # Codex: `_meta.threadId` on a tools/call
    BIRTH = "birth"  # the one unclaimed Claude transcript born after the client started


@dataclass
class Resolution:
    session_id: str | None = None
    source: Source | None = None
    proof: str | None = None  # what shows the id is ours, in one sentence
    claimed: bool = False  # an explicit claim: sticky against auto-detection
    conflicts: list[str] = field(default_factory=list)
    diagnosis: dict[str, str] = field(default_factory=dict)  # strategy -> what it saw
    previous_session_ids: list[str] = field(default_factory=list)  # newest last
    # When the current id was adopted (epoch s): a client drop written later is the same
    # client's next session. For the env id it is the server's start time.
    adopted_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Adoption:
    """A change of identity the agent must act on (move mail, re-mark asks, republish)."""

    session_id: str
    previous: str | None
