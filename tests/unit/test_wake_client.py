"""The real-client rule (oxtail_py/wake/client.py), on real processes and real files.

A process is a client by the executable the kernel runs, never by its name or argv[0].
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from oxtail_py.identity import CLAUDE, CODEX
from oxtail_py.wake.client import check_client, judge_executable

REPO = Path(__file__).resolve().parents[2]
CLIENTS = REPO / ".cache/clients/node_modules"
NODE = shutil.which("node")
SLEEP = shutil.which("sleep") or "/bin/sleep"
# Says when it is up: just after exec, node is still rewriting its argv (cmdline reads short).
IDLE_JS = 'process.stdout.write("ready\\n"); setTimeout(() => {}, 60000);\n'


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def _started(procs: list[subprocess.Popen[bytes]], argv: list[str], **kw: str) -> int:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, **kw)  # type: ignore[call-overload]
    procs.append(proc)
    if os.path.basename(os.path.realpath(kw.get("executable", argv[0]))).startswith("node"):
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    # Wait for the exec to have happened (the exe link names the new program then).
    deadline = time.monotonic() + 5
    want = os.path.realpath(kw.get("executable", argv[0]))
    while os.path.realpath(f"/proc/{proc.pid}/exe") != want and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(proc.pid)


def test_a_process_that_only_calls_itself_claude_is_not_a_client(
    spawn: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    by_argv0 = _started(spawn, ["claude", "60"], executable=SLEEP)  # exec -a claude sleep
    link = tmp_path / "claude"
    link.symlink_to(SLEEP)  # its process name (comm) is then `claude`
    by_link = _started(spawn, [str(link), "60"])
    for pid in (by_argv0, by_link):
        check = check_client(pid)
        assert check.kind is None
        assert os.path.realpath(SLEEP) in check.reason, check.reason


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_node_is_a_client_only_when_it_runs_a_client_package_entry(
    spawn: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    assert NODE is not None
    claude = tmp_path / "lib/node_modules/@anthropic-ai/claude-code/cli.js"
    codex = tmp_path / "lib/node_modules/@openai/codex/bin/codex.js"
    other = tmp_path / "lib/node_modules/claude-code-lookalike/cli.js"
    for script in (claude, codex, other):
        script.parent.mkdir(parents=True)
        script.write_text(IDLE_JS)
    bin_link = tmp_path / "bin/claude"  # how npm installs it: a symlink on PATH
    bin_link.parent.mkdir()
    bin_link.symlink_to(claude)
    assert check_client(_started(spawn, [NODE, str(claude)])).kind == CLAUDE
    assert check_client(_started(spawn, [NODE, "--no-warnings", str(bin_link)])).kind == CLAUDE
    assert check_client(_started(spawn, [NODE, str(codex)])).kind == CODEX
    relative = _started(
        spawn, [NODE, "node_modules/@openai/codex/bin/codex.js"], cwd=str(codex.parents[4])
    )
    assert check_client(relative).kind == CODEX
    refused = check_client(_started(spawn, [NODE, str(other)]))
    assert refused.kind is None and "not a Claude Code or Codex entry" in refused.reason
    # argv[0] `claude` on node changes nothing: the script decides
    assert check_client(_started(spawn, ["claude", str(other)], executable=NODE)).kind is None


def _executable(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF")
    path.chmod(0o755)
    return str(path)


def test_native_binaries_by_their_shipped_names(tmp_path: Path) -> None:
    cases = {
        "npm/@anthropic-ai/claude-code/bin/claude.exe": CLAUDE,
        "npm/@anthropic-ai/claude-code-linux-x64/claude": CLAUDE,
        "share/claude/versions/2.1.330": CLAUDE,
        "vendor/x86_64-unknown-linux-musl/bin/codex": CODEX,
        "vendor/codex/codex-x86_64-unknown-linux-musl": CODEX,
        "share/other/versions/2.1.330": None,
        "bin/claude-helper": None,
        "bin/codex-code-mode-host": None,
        "bin/sleep": None,
    }
    for relative, kind in cases.items():
        exe = _executable(tmp_path / relative)
        assert judge_executable(1, exe, [exe], "/").kind == kind, relative


def test_a_deleted_or_non_executable_file_is_not_a_client(tmp_path: Path) -> None:
    exe = _executable(tmp_path / "bin/claude")
    assert judge_executable(1, exe + " (deleted)", [exe], "/").kind is None
    os.chmod(exe, 0o644)
    assert "not a regular executable file" in judge_executable(1, exe, [exe], "/").reason
    os.unlink(exe)
    os.mkdir(exe)  # a directory named claude
    assert judge_executable(1, exe, [exe], "/").kind is None


@pytest.mark.skipif(not CLIENTS.is_dir(), reason="the pinned clients are not installed")
def test_the_pinned_real_clients_pass_the_rule() -> None:
    claude = CLIENTS / "@anthropic-ai/claude-code/bin/claude.exe"
    codex = next(CLIENTS.glob("@openai/codex-linux-*/vendor/*/bin/codex"))
    for exe, kind in ((claude, CLAUDE), (codex, CODEX)):
        real = os.path.realpath(exe)
        assert judge_executable(1, real, [str(exe)], "/").kind == kind
