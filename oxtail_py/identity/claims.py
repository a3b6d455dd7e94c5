"""Whether a server may take a session id by an explicit claim, and `oxtail-py claim`.

A claim is an agent's own statement of who it is, so it is checked against what others
can prove: an id that another live server holds is that server's mail (taking it would
steal it), and a session whose transcript records a directory outside the claimer's
project belongs to another project. Both are refused with the reason. The same check
runs in the CLI (for a prompt answer) and again in the server when it adopts the claim,
since anyone can write the claim file the CLI writes.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from oxtail_py import transcripts
from oxtail_py.errors import OxtailError
from oxtail_py.fsio import atomic_write_json, ensure_tree
from oxtail_py.identity.client import CLAUDE, CODEX, detect_client
from oxtail_py.layout import Layout, validate_session_id
from oxtail_py.procs import ProcessIdentity, identity_of
from oxtail_py.registry import Registry
from oxtail_py.scope import OutOfScopeError, contains, infer_project_root


class ClaimRefusedError(OxtailError):
    code = "session-taken"


def check_claim(
    layout: Layout,
    session_id: str,
    *,
    server: ProcessIdentity,
    project_root: Path,
    client_type: str | None,
) -> None:
    """Raise if `server` (in `project_root`) may not take `session_id`; return if it may."""
    validate_session_id(session_id)
    mine = detect_client(server.pid)
    for entry in Registry(layout).read_all():
        if entry.identity == server or session_id not in (
            entry.client.session_id,
            *entry.client.previous_session_ids,
        ):
            continue
        other = detect_client(entry.server_pid)
        if mine is not None and other is not None and other.pid == mine.pid:
            continue  # two servers under one client (a restart): the same agent
        raise ClaimRefusedError(
            f"session {session_id} belongs to the live oxtail server pid {entry.server_pid} "
            f"(cwd {entry.client.cwd}); a claim cannot take another agent's mail. Claim "
            "your own id: $CLAUDE_CODE_SESSION_ID (Claude) or $CODEX_THREAD_ID (Codex)"
        )
    kinds = [client_type] if client_type in (CLAUDE, CODEX) else [CLAUDE, CODEX]
    for kind in kinds:
        assert kind is not None
        found = transcripts.locate_transcript(kind, session_id)
        cwd = transcripts.transcript_cwd(found) if found else None
        if cwd is not None and not contains(project_root, cwd):
            raise OutOfScopeError(
                f"session {session_id} ran in {cwd} (its transcript {found} says so), "
                f"outside this project ({project_root}); a claim cannot cross projects. "
                "Claim the id of the session this server runs in"
            )


def write_claim(layout: Layout, server_pid: int, session_id: str) -> Path:
    """`oxtail-py claim`: a claim for one running server; it adopts it on its next call
    (checking it again)."""
    validate_session_id(session_id)
    server = identity_of(server_pid)
    if server is None:
        raise OxtailError(f"no running process with pid {server_pid}", code="no-such-server")
    entry = Registry(layout).get(server)
    if entry is None:
        raise OxtailError(
            f"pid {server_pid} is not an oxtail server (no registry entry); "
            "get_my_session shows your server's pid",
            code="no-such-server",
        )
    try:
        cwd = psutil.Process(server_pid).cwd()  # the live process's, not the entry's word
    except psutil.Error as exc:
        raise OxtailError(f"cannot read the cwd of pid {server_pid}: {exc}",
                          code="no-such-server") from exc
    root, _ = infer_project_root(cwd)
    check_claim(layout, session_id, server=server, project_root=root,
                client_type=entry.client.type)
    path = layout.claim_drop_file(server)
    ensure_tree(layout.root, layout.drops_dir)
    atomic_write_json(path, {"session_id": session_id})
    return path
