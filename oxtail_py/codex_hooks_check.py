"""Will Codex run our hooks? A typed answer with the problem and its fix.

An untrusted hook never runs in `codex exec` and stops the TUI at a review dialog;
a disabled or missing one never runs at all. Then mail reaches that agent only when
its model calls read_my_messages, and nothing says so. So a Codex-hosted server warns
once at start, and `oxtail-py doctor` shows the same finding: both call
`check_codex_hooks` (through `hooks_install.check_codex`, which also checks the hook
script itself). Pure reading: nothing here writes or reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from oxtail_py.codex_hook_sources import Source, read
from oxtail_py.codex_hooks import our_entries, our_groups
from oxtail_py.codex_trust import CodexHooksError, disabled_keys, trusted_hashes

INSTALL: Final = "run `oxtail-py install-hook` (or `oxtail-py setup`)"
APPROVE: Final = ("in the Codex TUI type /hooks and trust the oxtail hooks, or run "
                  "`oxtail-py setup` (or `oxtail-py install-hook`), which records the trust "
                  "for you")
NO_DELIVERY: Final = ("so Codex does not run them and mail reaches this agent only when it "
                      "calls read_my_messages")


class CodexHooksProblem(StrEnum):
    """Why Codex would not run our hooks; the value is a stable code."""

    SCRIPT_MISSING = "hook-script-missing"  # no oxtail-hook under the state root
    SCRIPT_OUTDATED = "hook-script-outdated"  # rendered by another oxtail-py version
    BAD_CONFIG = "bad-codex-config"  # hooks.json / config.toml we cannot read
    NOT_INSTALLED = "codex-hooks-not-installed"  # some of our events have no handler
    DISABLED = "codex-hooks-disabled"  # switched off in Codex's /hooks view
    UNTRUSTED = "codex-hooks-untrusted"  # never approved
    MODIFIED = "codex-hooks-modified"  # approved once, edited since: trust withdrawn


@dataclass(frozen=True, slots=True)
class CodexHooksCheck:
    """`problem` None: our hooks are installed, enabled and trusted, Codex runs them."""

    problem: CodexHooksProblem | None
    detail: str  # what is wrong, naming the file and events ("" when fine)
    fix: str  # what to do next: a command or Codex's /hooks ("" when fine)
    source: Path | None = None  # the file that holds our hooks, when they are found
    events: tuple[str, ...] = ()  # the events concerned

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def sentence(self) -> str:
        """One line for a log or a report: what is wrong, then the fix."""
        return f"{self.detail}: {self.fix}" if self.problem else ""


def check_codex_hooks(codex_home: Path, hook_command: str) -> CodexHooksCheck:
    """Whether Codex, reading `codex_home` (as `codex_home_as_named` spells it), runs
    our hooks installed as `hook_command`, in hooks.json or config.toml's [hooks]."""
    try:
        config = read(codex_home)
    except CodexHooksError as exc:
        return CodexHooksCheck(CodexHooksProblem.BAD_CONFIG, str(exc),
                               f"fix that file by hand, then {INSTALL}")
    wanted = {(event, group["hooks"][0]["command"])
              for event, groups in our_groups(hook_command).items() for group in groups}
    by_source = our_entries(config)
    found = {source: [e for e in entries if (e.event_name, e.command) in wanted]
             for source, entries in by_source.items()}
    # Ours live in one file; the one holding more of them is the one to report on.
    source = max(Source, key=lambda s: (len(found[s]), s == Source.HOOKS_JSON))
    entries = found[source]
    path = config.path(source)
    missing = sorted({event for event, _ in wanted} - {e.event_name for e in entries})
    if missing:
        where = f"{config.hooks_path} or {config.config_path}"
        return CodexHooksCheck(
            CodexHooksProblem.NOT_INSTALLED,
            f"the oxtail Codex hooks are not installed in {where} (missing: "
            f"{', '.join(missing)})", INSTALL, None, tuple(missing))
    disabled = sorted(e.event_name for e in entries if e.key in disabled_keys(config.doc))
    if disabled:
        return CodexHooksCheck(
            CodexHooksProblem.DISABLED,
            f"the oxtail Codex hooks for {', '.join(disabled)} are disabled in Codex",
            "enable them in Codex's /hooks view", path, tuple(disabled))
    recorded = trusted_hashes(config.doc)
    modified = sorted(e.event_name for e in entries
                      if e.key in recorded and recorded[e.key] != e.current_hash)
    untrusted = sorted(e.event_name for e in entries if e.key not in recorded)
    if modified:
        return CodexHooksCheck(
            CodexHooksProblem.MODIFIED,
            f"the oxtail Codex hooks ({', '.join(modified)}) in {path} changed after Codex "
            f"trusted them, {NO_DELIVERY}", APPROVE, path, tuple(modified))
    if untrusted:
        return CodexHooksCheck(
            CodexHooksProblem.UNTRUSTED,
            f"Codex has not trusted the oxtail hooks ({', '.join(untrusted)}) in {path}, "
            f"{NO_DELIVERY}", APPROVE, path, tuple(untrusted))
    return CodexHooksCheck(None, "", "", path, tuple(e.event_name for e in entries))
