"""Transcript readers: real Claude Code / Codex files → turns, budgets, where a read may look.

The fixtures under tests/fixtures/transcripts were recorded from the real clients (Claude Code
2.1.330, Codex 0.169.0) against a scripted model; manifest.json names each file's session id,
original file name and project cwd.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from oxtail_py.transcripts import (
    CUT_MARKER,
    SUMMARY_MAX_CHARS,
    TOOL_OUTPUT_MAX_CHARS,
    Turn,
    claude_transcripts_born_after,
    is_allowed_transcript,
    locate_transcript,
    read_transcript,
    summarize_input,
    transcript_roots,
    turn_bytes,
)
from oxtail_py.transcripts.claude import _statx_btime, encode_cwd

FIXTURES = Path(__file__).parent.parent / "fixtures" / "transcripts"
CLAUDE_TUI = FIXTURES / "claude/tui_two_turns.jsonl"
CLAUDE_HOOK = FIXTURES / "claude/print_pretooluse_context.jsonl"
CODEX_TUI = FIXTURES / "codex/tui_two_turns.jsonl"


def _manifest(file: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = json.loads((FIXTURES / "manifest.json").read_text())
    return next(entry for entry in entries if entry["file"] == file)


def _roles(turns: list[Turn]) -> list[str]:
    return [turn.role for turn in turns]


def _calls(turns: list[Turn]) -> list[str]:
    return [call.name for turn in turns for call in turn.tool_calls]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp HOME with no client env overrides, so only `home=` decides the roots."""
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("CODEX_HOME", raising=False)
    path = tmp_path / "home"
    path.mkdir()
    return path


def _write(path: Path, text: str = "{}\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- locate -----------------------------------------------------------------------------


def test_claude_session_is_found_in_any_project_dir(home: Path) -> None:
    sid = str(uuid.uuid4())
    _write(home / ".claude/projects/-work-other/x.jsonl")
    want = _write(home / f".claude/projects/-work-proj/{sid}.jsonl")
    assert locate_transcript("claude", sid, home=home) == want
    assert locate_transcript("claude", str(uuid.uuid4()), home=home) is None


def test_claude_config_dir_env_wins_over_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = str(uuid.uuid4())
    config = home / "elsewhere"
    want = _write(config / f"projects/-p/{sid}.jsonl")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    assert locate_transcript("claude", sid, home=home) == want
    assert transcript_roots(home=home)[0] == config / "projects"


def test_codex_rollout_is_found_by_thread_id_in_its_date_dir(home: Path) -> None:
    tid = "019ab1c2-3d4e-7f00-8a11-223344556677"
    day = home / ".codex/sessions/2025/11/23"
    _write(day / "rollout-2025-11-23T10-00-00-019ab1c2-3d4e-7f00-8a11-000000000000.jsonl")
    want = _write(day / f"rollout-2025-11-23T10-01-02-{tid}.jsonl")
    assert locate_transcript("codex", tid, home=home) == want


def test_codex_search_falls_back_to_newest_date_dirs(home: Path) -> None:
    # A v4 id carries no date, so the date directories are searched newest first.
    tid = str(uuid.uuid4())
    old = _write(home / f".codex/sessions/2024/01/05/rollout-2024-01-05T00-00-00-{tid}.jsonl")
    _write(home / ".codex/sessions/2025/12/31/rollout-2025-12-31T00-00-00-other.jsonl")
    _write(home / ".codex/sessions/2025/notes.txt")
    assert locate_transcript("codex", tid, home=home) == old


def test_codex_home_env_wins_over_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tid = str(uuid.uuid4())
    codex_home = home / "ch"
    want = _write(codex_home / f"sessions/2025/02/03/rollout-2025-02-03T01-02-03-{tid}.jsonl")
    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    assert locate_transcript("codex", tid, home=home) == want


@pytest.mark.parametrize("bad", ["../../etc/passwd", "*", "a/b", "", "x" * 200])
def test_locate_refuses_ids_that_are_not_ids(home: Path, bad: str) -> None:
    _write(home / ".claude/projects/-p/x.jsonl")
    assert locate_transcript("claude", bad, home=home) is None
    assert locate_transcript("codex", bad, home=home) is None


def test_unknown_client_type_is_an_error(home: Path) -> None:
    with pytest.raises(ValueError, match="claude, codex"):
        locate_transcript("gemini", "abc", home=home)


# --- allowed paths ----------------------------------------------------------------------


def test_a_jsonl_under_either_root_is_allowed(home: Path) -> None:
    claude = _write(home / ".claude/projects/-p/s.jsonl")
    codex = _write(home / ".codex/sessions/2025/01/01/rollout-x.jsonl")
    assert is_allowed_transcript(claude, home=home)
    assert is_allowed_transcript(codex, home=home)


def test_a_path_outside_the_roots_is_refused(home: Path) -> None:
    outside = _write(home / "notes/s.jsonl")
    sneaky = home / ".claude/projects/-p/../../../notes/s.jsonl"
    assert not is_allowed_transcript(outside, home=home)
    assert not is_allowed_transcript(sneaky, home=home)
    assert not is_allowed_transcript(home / ".claude/settings.jsonl", home=home)


def test_a_symlink_escaping_the_root_is_refused(home: Path) -> None:
    secret = _write(home / "secret.jsonl")
    link = home / ".claude/projects/-p/s.jsonl"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    assert not is_allowed_transcript(link, home=home)
    linked_dir = home / ".codex/sessions/2025"
    linked_dir.parent.mkdir(parents=True)
    linked_dir.symlink_to(home)
    assert not is_allowed_transcript(linked_dir / "secret.jsonl", home=home)


def test_non_jsonl_and_non_regular_files_are_refused(home: Path) -> None:
    text = _write(home / ".claude/projects/-p/s.txt")
    directory = home / ".claude/projects/-p/d.jsonl"
    directory.mkdir()
    fifo = home / ".claude/projects/-p/f.jsonl"
    os.mkfifo(fifo)
    assert not is_allowed_transcript(text, home=home)
    assert not is_allowed_transcript(directory, home=home)
    assert not is_allowed_transcript(fifo, home=home)
    assert not is_allowed_transcript(home / ".claude/projects/-p/missing.jsonl", home=home)


def test_a_root_that_is_itself_a_symlink_still_works(home: Path) -> None:
    dotfiles = home / "dotfiles/claude"
    want = _write(dotfiles / "projects/-p/s.jsonl")
    (home / ".claude").symlink_to(dotfiles)
    assert is_allowed_transcript(home / ".claude/projects/-p/s.jsonl", home=home)
    assert is_allowed_transcript(want, home=home)


# --- Claude project dirs and birth ------------------------------------------------------


def test_claude_project_dir_name_replaces_every_non_alphanumeric() -> None:
    assert encode_cwd("/work/my_proj.v2/a b") == "-work-my-proj-v2-a-b"


def test_transcripts_born_after_sees_only_new_files(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "my_project.d"
    project.mkdir()
    directory = home / ".claude/projects" / encode_cwd(str(project))
    old = _write(directory / "old.jsonl")
    time.sleep(0.05)
    after = time.time()
    time.sleep(0.05)
    new = _write(directory / "new.jsonl")
    _write(directory / "new.txt")
    assert claude_transcripts_born_after(project, after, home=home) == [new]
    if _statx_btime(str(old)) is None:
        pytest.skip("this filesystem records no birth time; st_ctime moves on every write")
    # A transcript still being written is not newly born: appending moves st_ctime only.
    with open(old, "a") as handle:
        handle.write("{}\n")
    assert claude_transcripts_born_after(project, after, home=home) == [new]


def test_long_project_paths_match_claudes_hashed_dir_name(home: Path) -> None:
    project = Path("/" + "/".join(["segment_of_a_long_path"] * 12))
    name = encode_cwd(str(project))
    assert len(name) > 200
    hashed = _write(home / ".claude/projects" / f"{name[:200]}-1k2j3h" / "s.jsonl")
    assert claude_transcripts_born_after(project, 0.0, home=home) == [hashed]


# --- parsing the real fixtures ----------------------------------------------------------


def test_claude_tui_transcript_reads_as_two_prompts_with_their_tools() -> None:
    view = read_transcript(CLAUDE_TUI, "claude")
    # 200+ lines of attachments, api-request copies, queue/mode/cost bookkeeping → 8 turns.
    assert _roles(view.turns) == [
        "user", "assistant", "tool", "assistant", "user", "assistant", "tool", "assistant",
    ]  # fmt: skip
    first = view.turns[0]
    assert first.text == "turn one: run echo hi"
    assert first.timestamp == "2026-11-23T18:13:25.754Z"
    # "Running echo." and the Bash tool_use are two lines of one response (same message id).
    assert view.turns[1].text == "Running echo."
    assert view.turns[1].tool_calls[0].name == "Bash"
    assert view.turns[1].tool_calls[0].summary == '{"command":"echo hi","description":"print hi"}'
    assert view.turns[2].text == "hi"
    assert view.turns[4].text == "turn two: who am I?"
    assert _calls(view.turns) == ["Bash", "mcp__oxtail__whoami"]
    assert view.turns[6].text.startswith("STUB-WHOAMI")
    assert len(view.turns[6].text) <= TOOL_OUTPUT_MAX_CHARS
    # What the scripted model answered to turn two in this recording.
    assert view.turns[-1].text == "The command printed hi."
    assert (view.total_turns, view.truncated, view.skipped_lines) == (8, False, 0)


def test_claude_hook_context_is_a_system_turn_as_the_model_saw_it() -> None:
    view = read_transcript(CLAUDE_HOOK, "claude")
    assert _roles(view.turns) == ["user", "assistant", "system", "tool", "assistant"]
    assert view.turns[0].text == "run echo hi with a hook"
    assert view.turns[2].text == (
        "PreToolUse:Bash hook additional context: E2E-HOOK-CONTEXT: you have 1 unread message"
    )
    assert view.turns[-1].text == "Done, and I saw the hook's note."


def test_codex_rollout_skips_instructions_and_environment_context() -> None:
    view = read_transcript(CODEX_TUI, "codex")
    assert _roles(view.turns) == [
        "user", "assistant", "tool", "assistant", "user", "assistant", "tool", "assistant",
    ]  # fmt: skip
    texts = " ".join(turn.text for turn in view.turns)
    assert "<environment_context>" not in texts
    assert "skills_instructions" not in texts
    assert view.turns[0].text == "turn one: run echo hi"
    assert view.turns[0].timestamp == "2026-11-23T18:13:29.764Z"
    # The preamble message and the function_call of one response make one turn.
    assert view.turns[1].text == "Running echo."
    assert view.turns[1].tool_calls[0].name == "exec_command"
    assert view.turns[1].tool_calls[0].summary == '{"cmd":"echo hi"}'
    assert view.turns[2].text.endswith("Output:\nhi")
    # An MCP tool is a function inside the namespace tool `mcp__<server>`.
    assert _calls(view.turns) == ["exec_command", "mcp__oxtail.whoami"]
    # An MCP result's output is a list of content items, joined.
    assert view.turns[6].text.startswith("Wall time: 0.0038 seconds\nOutput:\nSTUB-WHOAMI")
    assert len(view.turns[6].text) <= TOOL_OUTPUT_MAX_CHARS
    assert view.turns[-1].text == "The server told me who I am."
    assert (view.total_turns, view.truncated, view.skipped_lines) == (8, False, 0)


def test_event_msg_duplicates_are_not_read_as_turns(tmp_path: Path) -> None:
    # The same rollout without its response_item lines has no conversation left.
    only_events = tmp_path / "events.jsonl"
    lines = CODEX_TUI.read_text().splitlines(keepends=True)
    only_events.write_text("".join(ln for ln in lines if json.loads(ln)["type"] != "response_item"))
    assert "turn one: run echo hi" in only_events.read_text()
    assert read_transcript(only_events, "codex").turns == []


# --- budgets ----------------------------------------------------------------------------


@pytest.mark.parametrize("path,client", [(CLAUDE_TUI, "claude"), (CODEX_TUI, "codex")])
def test_limit_keeps_the_newest_turns_oldest_first(path: Path, client: str) -> None:
    whole = read_transcript(path, client).turns
    view = read_transcript(path, client, limit=3)
    assert view.turns == whole[-3:]
    assert view.total_turns == 8
    assert view.truncated
    assert view.truncated_reason is not None and "limit=3" in view.truncated_reason


@pytest.mark.parametrize("path,client", [(CLAUDE_TUI, "claude"), (CODEX_TUI, "codex")])
def test_max_bytes_keeps_whole_newest_turns_that_fit(path: Path, client: str) -> None:
    whole = read_transcript(path, client).turns
    two = turn_bytes(whole[-1]) + turn_bytes(whole[-2])
    view = read_transcript(path, client, max_bytes=two)
    assert view.turns == whole[-2:]
    assert view.truncated
    assert view.truncated_reason is not None and f"max_bytes={two}" in view.truncated_reason
    assert read_transcript(path, client, max_bytes=two - 1).turns == whole[-1:]


def test_a_newest_turn_longer_than_max_bytes_is_cut_and_marked() -> None:
    view = read_transcript(CODEX_TUI, "codex", max_bytes=20)
    (turn,) = view.turns
    assert turn.text == "The server" + CUT_MARKER
    assert turn_bytes(turn) <= 20
    assert view.truncated
    assert view.truncated_reason is not None and "cut" in view.truncated_reason


def test_a_cut_never_splits_a_utf8_character(tmp_path: Path) -> None:
    path = tmp_path / "accents.jsonl"
    path.write_text(CODEX_TUI.read_text().replace("The server told me who I am.", "é" * 40))
    (turn,) = read_transcript(path, "codex", max_bytes=20).turns
    # 20 bytes minus the marker leaves 11: five two-byte characters, not five and a half.
    assert turn.text == "é" * 5 + CUT_MARKER


def test_tool_summaries_are_one_short_line() -> None:
    summary = summarize_input({"command": "line one\n" * 100, "description": "x"})
    assert len(summary) == SUMMARY_MAX_CHARS
    assert "\n" not in summary
    assert summary.endswith("…")


def test_bad_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="limit"):
        read_transcript(CLAUDE_TUI, "claude", limit=0)
    with pytest.raises(ValueError, match="unknown client type"):
        read_transcript(CLAUDE_TUI, "gemini")
    with pytest.raises(FileNotFoundError):
        read_transcript(CLAUDE_TUI.with_name("missing.jsonl"), "claude")


# --- corrupt lines ----------------------------------------------------------------------


@pytest.mark.parametrize("path,client", [(CLAUDE_TUI, "claude"), (CODEX_TUI, "codex")])
def test_corrupt_and_half_written_lines_are_skipped_and_counted(
    tmp_path: Path, path: Path, client: str
) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(
        b"".join(lines[:middle])
        + b"not json at all\n"
        + b"[1, 2, 3]\n"
        + b"\n"  # blank lines are not corrupt
        + b"".join(lines[middle:])
        + '{"type": "user", "message": {"content": "half-wri\u00e9'.encode()[:-1]  # cut mid-é
    )
    view = read_transcript(damaged, client)
    assert view.skipped_lines == 3
    assert view.turns == read_transcript(path, client).turns


# --- the real layouts -------------------------------------------------------------------


def test_real_claude_transcript_is_located_and_read_under_a_temp_home(home: Path) -> None:
    entry = _manifest("claude/tui_two_turns.jsonl")
    directory = home / ".claude/projects" / encode_cwd(entry["cwd"])
    assert directory.name == "-tmp-oxe2e-record-4g5jdrmm-project"
    directory.mkdir(parents=True)
    placed = directory / entry["original_name"]
    shutil.copy(CLAUDE_TUI, placed)
    assert locate_transcript("claude", entry["session_id"], home=home) == placed
    assert is_allowed_transcript(placed, home=home)
    assert read_transcript(placed, "claude").turns[0].text == "turn one: run echo hi"


def test_real_codex_rollout_is_located_and_read_under_a_temp_home(home: Path) -> None:
    entry = _manifest("codex/tui_two_turns.jsonl")
    day = home / ".codex/sessions/2026/11/23"
    day.mkdir(parents=True)
    placed = day / entry["original_name"]
    shutil.copy(CODEX_TUI, placed)
    assert locate_transcript("codex", entry["session_id"], home=home) == placed
    assert is_allowed_transcript(placed, home=home)
    assert read_transcript(placed, "codex").turns[-1].text == "The server told me who I am."


def test_a_uuid7_thread_id_goes_straight_to_its_own_date_dir(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _manifest("codex/tui_two_turns.jsonl")
    sessions = home / ".codex/sessions"
    for day in ("2026/11/24", "2026/12/01", "2027/01/01"):
        _write(sessions / day / "rollout-2027-01-01T00-00-00-other.jsonl")
    placed = _write(sessions / "2026/11/23" / entry["original_name"])
    listed: list[str] = []
    real_listdir = os.listdir

    def listdir(path: Any) -> list[str]:
        listed.append(str(path))
        return real_listdir(path)

    monkeypatch.setattr("oxtail_py.transcripts.codex.os.listdir", listdir)
    assert locate_transcript("codex", entry["session_id"], home=home) == placed
    assert listed == [str(sessions / "2026/11/23")]


def test_claude_meta_and_sidechain_lines_are_not_the_conversation(tmp_path: Path) -> None:
    # Claude Code marks its own caveat prompts isMeta and a subagent's lines isSidechain.
    lines = [json.loads(line) for line in CLAUDE_TUI.read_text().splitlines()]
    prompts = [r for r in lines if r["type"] == "user" and isinstance(r["message"]["content"], str)]
    prompts[0]["isMeta"] = True
    prompts[1]["isSidechain"] = True
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert [t for t in read_transcript(edited, "claude").turns if t.role == "user"] == []


def test_locate_never_returns_a_symlink_that_escapes_the_root(home: Path) -> None:
    sid = str(uuid.uuid4())
    secret = _write(home / "secret.jsonl")
    link = home / f".claude/projects/-p/{sid}.jsonl"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    assert locate_transcript("claude", sid, home=home) is None
