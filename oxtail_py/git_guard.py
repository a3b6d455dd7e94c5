"""`oxtail-py install-guard`: a git pre-commit hook that refuses a commit touching files
under another live agent's exclusive reservation.

The hook chains the repository's existing pre-commit hook (kept as
`pre-commit.oxtail-chained`, run first, its failure stops the commit), then runs
`check` through the installing interpreter in isolated mode (as the tool hook's helper:
a repository must not shadow our modules). Bypass, documented in the refusal:
`OXTAIL_GUARD=off git commit ...` (ours only), or `git commit --no-verify` (every hook).

Whose commit it is: the holder whose client process (its server's parent) is an
ancestor of this hook, i.e. the agent whose shell runs `git commit`, is the committer;
its own reservations never refuse it. A human in a terminal is nobody's: every live
exclusive reservation applies. (Under Codex's shared app-server daemon every thread's
server has the same parent, so those threads count as one committer.)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import oxtail_py
from oxtail_py.errors import OxtailError
from oxtail_py.framing import neutralize, quoted
from oxtail_py.fsio import atomic_write_bytes
from oxtail_py.globmatch import Nfa
from oxtail_py.layout import Layout
from oxtail_py.procs import ProcessIdentity, identity_of, parent_pid
from oxtail_py.reservations import Reservation, ReservationBook

HOOK_FILE: Final = "pre-commit"
CHAINED: Final = "pre-commit.oxtail-chained"
MARK: Final = "# oxtail-guard"
GIT_TIMEOUT_S: Final = 20
REFUSE: Final = 3  # the check's exit status for "refused" (see the script)
_LOADER: Final = (
    "import sys\n"
    "from importlib.util import module_from_spec, spec_from_file_location\n"
    "where = sys.argv[1]\n"
    'spec = spec_from_file_location("oxtail_py", where + "/__init__.py", '
    "submodule_search_locations=[where])\n"
    "package = module_from_spec(spec)\n"
    'sys.modules["oxtail_py"] = package\n'
    "spec.loader.exec_module(package)\n"
    "from oxtail_py.git_guard import main\n"
    "raise SystemExit(main(sys.argv[2:]))"
)


class GuardError(OxtailError):
    code = "guard-install-failed"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          timeout=GIT_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise GuardError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}; is it "
                         "a git repository?", code="not-a-repo")
    return done.stdout


def hooks_dir(repo: Path) -> Path:
    """Where git looks for hooks (core.hooksPath respected), absolute."""
    found = Path(_git(repo, "rev-parse", "--git-path", "hooks").strip())
    return found if found.is_absolute() else (repo / found)


def script(root: Path) -> str:
    package = Path(oxtail_py.__file__).resolve().parent
    return f"""#!/bin/sh
{MARK} (installed by `oxtail-py install-guard`)
# Refuses a commit that touches files under another live agent's exclusive oxtail
# reservation. Bypass: OXTAIL_GUARD=off git commit ...   (or git commit --no-verify,
# which skips every pre-commit hook). The hook that was here runs first: {CHAINED}.
here=$(dirname "$0")
if [ -f "$here/{CHAINED}" ] && [ -x "$here/{CHAINED}" ]; then
    "$here/{CHAINED}" "$@" || exit $?
fi
case ${{OXTAIL_GUARD:-}} in off | OFF | Off) exit 0 ;; esac
root=${{AGENTMAIL_HOME:-{shlex.quote(str(root))}}}
case $root in '~') root=$HOME ;; '~/'*) root=$HOME/${{root#'~/'}} ;; esac
case $root in /*) ;; *) root=$PWD/$root ;; esac
# Exit {REFUSE} is the check's refusal; anything else (a missing interpreter or package,
# a crash) lets the commit go: a broken guard must not stop every commit.
{shlex.quote(sys.executable)} -I -c {shlex.quote(_LOADER)} \\
    {shlex.quote(str(package))} --root "$root"
rc=$?
[ "$rc" -eq {REFUSE} ] && exit 1
[ "$rc" -eq 0 ] || echo "oxtail guard: not checked (exit $rc)" >&2
exit 0
"""


@dataclass(frozen=True, slots=True)
class GuardInstall:
    hook: Path
    chained: Path | None  # the hook that was there before, now run first


def install(repo: Path, layout: Layout) -> GuardInstall:
    directory = hooks_dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    hook, chained = directory / HOOK_FILE, directory / CHAINED
    if hook.is_symlink() or (hook.exists() and not hook.is_file()):
        raise GuardError(f"{hook} is not a regular file; move it aside, then install again")
    existing = hook.read_bytes() if hook.exists() else None
    kept: Path | None = chained if chained.exists() else None
    if existing is not None and MARK.encode() not in existing:
        if chained.exists():
            raise GuardError(f"both {hook} (not ours) and {chained} exist; merge them by hand")
        os.rename(hook, chained)  # its mode (executable) goes with it
        kept = chained
    atomic_write_bytes(hook, script(layout.root).encode("utf-8"))
    os.chmod(hook, 0o755)  # git runs only an executable hook
    return GuardInstall(hook, kept)


# -- the check (runs inside `git commit`) -----------------------------------------------------


def committer_clients() -> set[ProcessIdentity]:
    """Every process above this one: the committing agent's client is among them."""
    found: set[ProcessIdentity] = set()
    pid: int | None = os.getpid()
    while pid is not None and pid > 1 and len(found) < 64:
        pid = parent_pid(pid)
        if pid is None:
            break
        ident = identity_of(pid)
        if ident is not None:
            found.add(ident)
    return found


def _is_committer(r: Reservation, ancestors: set[ProcessIdentity]) -> bool:
    client = parent_pid(r.holder.server.pid)
    ident = identity_of(client) if client is not None else None
    return ident is not None and ident in ancestors


def blocking(repo_root: Path, layout: Layout, staged: list[str]) -> list[tuple[str, Reservation]]:
    """(path, reservation) for each staged path under another agent's exclusive one."""
    ancestors = committer_clients()
    others = [r for r in ReservationBook(layout, repo_root).all()
              if r.exclusive and not _is_committer(r, ancestors)]
    nfas: list[tuple[Reservation, Nfa]] = [(r, r.nfa()) for r in others]
    return [(path, r) for path in staged for r, nfa in nfas if nfa.matches(path)]


def refusal(hits: list[tuple[str, Reservation]]) -> str:
    lines = ["oxtail guard: commit refused: it touches files another live agent reserved "
             "exclusively:"]
    for path, r in hits[:20]:
        lines.append(
            f"  {neutralize(path)}: reserved by {neutralize(r.holder.label)} (session "
            f"{r.holder.session_id}) as {quoted(r.given)}, reason {quoted(r.reason)}; ask it: "
            f'ask_peer(target="{r.holder.session_id}", body="please release {neutralize(path)}")'
        )
    lines.append("Wait for the release, unstage those files, or bypass this check once with "
                 "OXTAIL_GUARD=off git commit ...")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """REFUSE only for a proven conflict; any internal error lets the commit go."""
    try:
        if len(argv) != 2 or argv[0] != "--root" or not os.path.isabs(argv[1]):
            raise ValueError(f"usage: --root ABSOLUTE_ROOT, not {argv!r}")
        layout = Layout(Path(argv[1]))
        top = Path(os.path.realpath(_git(Path.cwd(), "rev-parse", "--show-toplevel").strip()))
        raw = _git(top, "diff", "--cached", "--name-only", "--no-renames", "-z")
        staged = [p for p in raw.split("\0") if p]
        hits = blocking(top, layout, staged)
    except Exception as exc:  # fail open: a broken guard must not stop every commit
        print(f"oxtail guard: not checked ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 0
    if hits:
        print(refusal(hits), file=sys.stderr)
        return REFUSE
    return 0

