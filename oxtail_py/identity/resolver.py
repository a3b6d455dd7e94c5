"""Who am I: resolve this server's session id, strategy by strategy, with the proof.

Order of trust:
  claim   claim_session / register_my_session, or `oxtail-py claim` (checked: never an id
          another live server holds, never a session of another project)
  env     CLAUDE_CODE_SESSION_ID given to this server at launch (Claude Code >= 2.1)
  drop    the SessionStart drop of this server's own Claude client (live process tree)
  meta    Codex: `_meta.threadId` on a tools/call (its env is filtered)
  birth   the one Claude transcript born after our client started, unclaimed by others

Following: a Claude client starts a new session on /clear, /resume, --continue and
compaction, and its SessionStart hook rewrites its drop. A proven drop of this server's
own client that is newer than the current id (for the env id: newer than the server) is
the same agent's next session, and the server follows it, even after an explicit claim:
a claim outranks what auto-detection guesses at the same moment, not what the agent's own
client later proves. A drop written before the claim never overrides it. Codex clients are
never followed through drops: one Codex process (its shared daemon) serves many threads,
each with its own server, and identifies every call by `_meta.threadId` instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

from oxtail_py import transcripts
from oxtail_py.errors import OxtailError
from oxtail_py.identity.claims import check_claim
from oxtail_py.identity.client import CLAUDE, ClientProcess
from oxtail_py.identity.drops import Drop, read_claim_drop, read_client_drop
from oxtail_py.identity.resolution import Adoption, Resolution, Source
from oxtail_py.layout import SESSION_ID_RE, Layout, validate_session_id
from oxtail_py.procs import ProcessIdentity
from oxtail_py.registry import MAX_PREVIOUS_SESSION_IDS, Registry

_MAX_CONFLICTS: Final = 16


class IdentityResolver:
    def __init__(
        self,
        layout: Layout,
        *,
        server: ProcessIdentity,
        client: ClientProcess | None,
        cwd: str,
        project_root: Path,
        env_session_id: str | None,
    ) -> None:
        self.layout = layout
        self.server = server
        self.client = client
        self.cwd = cwd
        self.project_root = project_root
        self.env_session_id = (
            env_session_id if env_session_id and SESSION_ID_RE.fullmatch(env_session_id) else None
        )
        self.state = Resolution()
        self.client_type: str | None = client.type if client else None

    # -- strategies -------------------------------------------------------------------

    def refresh(self) -> Adoption | None:
        """Try every strategy that needs no tool-call context; cheap enough per call.
        Returns the change to act on, or None when the identity stays."""
        diag = self.state.diagnosis
        adoption = self._take_claim_drop()
        if adoption is not None:
            return adoption
        if not self.state.claimed:
            diag.setdefault("claim", "no explicit claim")
        drop = self._client_drop()
        if self.state.session_id is not None:
            return self._follow(drop)
        diag["env"] = (
            f"CLAUDE_CODE_SESSION_ID={self.env_session_id}" if self.env_session_id else "not set"
        )
        if self.client is None:
            diag["client"] = "no claude/codex process above this server"
        else:
            diag["client"] = f"{self.client.type} pid {self.client.pid}"
        server_started = float(self.server.start)
        if drop is not None and (self.env_session_id is None or drop.written_at > server_started):
            return self._adopt(drop.session_id, Source.DROP, drop.describe(), drop.written_at)
        if self.env_session_id is not None:
            proof = "CLAUDE_CODE_SESSION_ID in this server's environment, set by its client"
            return self._adopt(self.env_session_id, Source.ENV, proof, server_started)
        if self.client is not None and self.client.type == CLAUDE:
            born = self._transcript_birth_match()
            if born is not None:
                proof = "the only unclaimed transcript born after the client started"
                return self._adopt(born, Source.BIRTH, proof, time.time())
        return None

    def _client_drop(self) -> Drop | None:
        if self.client is None or self.client.type != CLAUDE:
            self.state.diagnosis["drop"] = "not followed: no Claude client above this server"
            return None
        reading = read_client_drop(self.layout, self.client)
        self.state.diagnosis["drop"] = reading.reason
        return reading.drop

    def _follow(self, drop: Drop | None) -> Adoption | None:
        if drop is None or drop.session_id == self.state.session_id:
            return None
        if drop.written_at <= self.state.adopted_at:
            self.state.diagnosis["follow"] = (
                f"kept {self.state.session_id}: the drop naming {drop.session_id} is older "
                f"than this identity ({self.state.source})"
            )
            return None
        self.state.diagnosis["follow"] = (
            f"followed the client from {self.state.session_id} to {drop.session_id} "
            f"(SessionStart source {drop.source})"
        )
        return self._adopt(
            drop.session_id, Source.DROP, drop.describe(), drop.written_at, follow=True
        )

    def _take_claim_drop(self) -> Adoption | None:
        found = read_claim_drop(self.layout, self.server)
        if found is None:
            return None
        found.path.unlink(missing_ok=True)  # read once: adopted or refused, never again
        try:
            return self.claim(found.session_id, via="oxtail-py claim")
        except OxtailError as exc:
            self.state.diagnosis["claim"] = f"refused oxtail-py claim of {found.session_id}: {exc}"
            return None

    def _transcript_birth_match(self) -> str | None:
        if self.client is None or self.client.start is None:
            return None
        born = transcripts.claude_transcripts_born_after(Path(self.cwd), float(self.client.start))
        taken = {
            e.client.session_id
            for e in Registry(self.layout).read_all()
            if e.identity != self.server
        }
        fresh = [p.stem for p in born if p.stem not in taken and SESSION_ID_RE.fullmatch(p.stem)]
        self.state.diagnosis["birth"] = (
            f"{len(fresh)} unclaimed transcript(s) born after the client started"
        )
        return fresh[0] if len(fresh) == 1 else None

    # -- explicit and per-call ------------------------------------------------------------

    def claim(self, session_id: str, *, via: str = "claim_session") -> Adoption | None:
        """An explicit claim, checked (see claims.check_claim); sticky once taken."""
        validate_session_id(session_id)
        check_claim(
            self.layout,
            session_id,
            server=self.server,
            project_root=self.project_root,
            client_type=self.client_type,
        )
        self.state.diagnosis["claim"] = f"{via} {session_id}"
        return self._adopt(session_id, Source.CLAIM, f"explicit {via}", time.time(), claim=True)

    def observe_meta(self, thread_id: str) -> Adoption | None:
        """Codex sends its thread id as `_meta.threadId` on every tools/call."""
        if not SESSION_ID_RE.fullmatch(thread_id):
            return None
        self.state.diagnosis["meta"] = f"_meta.threadId={thread_id}"
        if self.state.session_id is None:
            if self.client_type is None:
                self.client_type = "codex"
            proof = "_meta.threadId of a tools/call from this server's own client"
            return self._adopt(thread_id, Source.META, proof, time.time())
        if thread_id != self.state.session_id:
            note = (
                f"tool call carried threadId {thread_id} but this server is "
                f"{self.state.session_id} ({self.state.source}); kept the latter"
            )
            if note not in self.state.conflicts and len(self.state.conflicts) < _MAX_CONFLICTS:
                self.state.conflicts.append(note)
        return None

    # -- the change ------------------------------------------------------------------

    def _adopt(
        self,
        session_id: str,
        source: Source,
        proof: str,
        adopted_at: float,
        *,
        claim: bool = False,
        follow: bool = False,
    ) -> Adoption | None:
        validate_session_id(session_id)
        state = self.state
        previous = state.session_id
        if previous is not None and previous != session_id and not (claim or follow):
            return None  # only a claim or the client's own later session moves an identity
        state.session_id, state.source, state.proof = session_id, source, proof
        state.adopted_at = adopted_at
        state.claimed = claim or (state.claimed and not follow)
        if previous is not None and previous != session_id:
            kept = [p for p in state.previous_session_ids if p not in (previous, session_id)]
            state.previous_session_ids = [*kept, previous][-MAX_PREVIOUS_SESSION_IDS:]
        if previous == session_id:
            return None
        return Adoption(session_id, previous)
