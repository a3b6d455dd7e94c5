"""`oxtail-py asks`: the project's asks as the wait-for graph, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from oxtail_py import asks_ledger
from oxtail_py.asks_ledger import AskRecord, AskState
from oxtail_py.fsio import atomic_write_json, ensure_tree
from oxtail_py.layout import Layout
from oxtail_py.messages import new_message_id, now_iso
from oxtail_py.procs import self_identity
from tests.integration.harness import REPO

A = "aaaaaaaa-0000-4000-8000-0000000000a1"
B = "bbbbbbbb-0000-4000-8000-0000000000b2"


def _record(asker: str, target: str, project: Path, state: AskState) -> AskRecord:
    return AskRecord(new_message_id(), asker, asker, self_identity().token(), target, "peer",
                     str(project), state, now_iso(), now_iso(), time.time())  # fmt: skip


def _run(project: Path, root: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "oxtail_py", "asks", *args],
        cwd=project,
        env={**os.environ, "AGENTMAIL_HOME": str(root), "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout


def test_lists_open_asks_of_the_project_and_flags_a_cycle(project: Path, tmp_path: Path) -> None:
    root = tmp_path / "agentmail"
    layout = Layout(root)
    waiting = _record(A, B, project, AskState.WAITING)
    asks_ledger.open_ask(layout, waiting)
    answered = _record(A, B, project, AskState.ANSWERED)
    elsewhere = _record(B, A, tmp_path / "other", AskState.PENDING)
    forged = _record(B, A, project, AskState.WAITING)  # bypassing open_ask: a cycle
    for record in (answered, elsewhere, forged):
        ensure_tree(layout.root, layout.asker_dir(record.asker))
        atomic_write_json(layout.ask_file(record.asker, record.request_id), record.to_dict())
    out = _run(project, root)
    assert waiting.request_id in out and forged.request_id in out
    assert answered.request_id not in out and elsewhere.request_id not in out
    assert "CYCLE: " in out and A in out.split("CYCLE: ")[1]
    assert answered.request_id in _run(project, root, "--all")
