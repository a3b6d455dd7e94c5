"""File reservations: what they cost the hook and the reserving agent.

(a) the installed hook for a Claude `Edit` and a `Bash` call with no holder file (pure
    shell), and for a `Bash` call while reservations exist (still pure shell: only edit
    tools look); (b) the hook for an `Edit` while 10 holders hold 5 patterns each in the
    project: a free file (the lean check starts and says nothing) and a file under another
    agent's exclusive reservation (a deny), and the free file again with the lean check
    started without -S (the site module run: what -S saves), next to the interpreter's
    floors with and without -S; (c) `reserve_files` over MCP against a real server
    (renewing 3 paths: lock, read 10 holders, overlap checks, write), and the
    same in-process (ReservationBook.reserve) for reference. p50/p99 of wall time.

    python bench/reservations.py [--runs 200] [--reserves 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _world import connect, ok, world

from oxtail_py.hooks_install import install
from oxtail_py.layout import Layout
from oxtail_py.procs import ProcessIdentity, identity_of
from oxtail_py.reservation_patterns import normalize
from oxtail_py.reservations import Holder, ReservationBook
from oxtail_py.settings import Settings

ME = "11111111-1111-4111-8111-111111111111"


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):7.2f} ms   p99 {p99:7.2f} ms   (n={len(ordered)})"


def _payload(project: Path, tool: str, target: str) -> bytes:
    tool_input = ({"command": f"ls {target}"} if tool == "Bash"
                  else {"file_path": str(project / target), "old_string": "a", "new_string": "b"})
    return json.dumps({"session_id": ME, "transcript_path": "/x.jsonl", "cwd": str(project),
                       "hook_event_name": "PreToolUse", "tool_name": tool,
                       "tool_input": tool_input, "tool_use_id": "toolu_1"},
                      separators=(",", ":")).encode()


def _time(argv: list[str], payload: bytes, env: dict[str, str], runs: int) -> tuple[str, str]:
    samples = []
    out = b""
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, input=payload, env=env, capture_output=True, check=True)
        samples.append((time.perf_counter() - start) * 1000)
        out = done.stdout
    verdict = "deny" if b'"deny"' in out else ("context" if out else "nothing")
    return _percentiles(samples), verdict


def _holders(layout: Layout, project: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    for n, proc in enumerate(procs):
        ident = identity_of(proc.pid)
        assert ident is not None
        paths = [f"area{n}/", f"lib/mod{n}.py", f"docs/{n}/**/*.md", f"tests/test_{n}_*.py",
                 f"cfg/{n}.toml"]
        patterns = [normalize(p, project) for p in paths]
        ReservationBook(layout, project).reserve(
            Holder(ident, f"cccccccc-0000-4000-8000-{n:012d}", "claude", f"peer{n}"),
            [(p.given, p.pattern, p.regex, p.kind) for p in patterns],
            exclusive=True, ttl_s=3600, reason=f"work item {n}")


async def _reserve_over_mcp(params: object, reserves: int) -> list[float]:
    async with connect(params) as client:  # type: ignore[arg-type]
        args = {"paths": ["src/a.py", "src/b/", "web/**/*.ts"], "reason": "bench"}
        for _ in range(10):
            ok(await client.call_tool("reserve_files", args))
        samples = []
        for _ in range(reserves):
            start = time.perf_counter()
            got = ok(await client.call_tool("reserve_files", args))
            samples.append((time.perf_counter() - start) * 1000)
            assert len(got["granted"]) == 3, got
        return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--reserves", type=int, default=200)
    args = parser.parse_args()
    with world() as w:
        env = {**os.environ, "HOME": str(w.home), "AGENTMAIL_HOME": str(w.agentmail)}
        install(Settings.from_env(env))
        layout = Layout(w.agentmail)
        hook = [str(w.agentmail / "hooks" / "oxtail-hook"), "claude", "pretooluse"]
        project = Path(os.path.realpath(w.project))
        for label, tool in (("Edit, no holder file", "Edit"), ("Bash, no holder file", "Bash")):
            figures, verdict = _time(hook, _payload(project, tool, "src/a.py"), env, args.runs)
            print(f"(a) hook {label:44} {figures}   -> {verdict}")
        procs = [subprocess.Popen(["sleep", "600"]) for _ in range(10)]
        try:
            _holders(layout, project, procs)
            for label, tool, target in (
                ("Bash, 10 holders x 5 patterns", "Bash", "lib/mod3.py"),
                ("Edit of a free file, 10 holders x 5 patterns", "Edit", "src/a.py"),
                ("Edit of a reserved file (deny)", "Edit", "lib/mod3.py"),
            ):
                figures, verdict = _time(hook, _payload(project, tool, target), env, args.runs)
                part = "(a)" if tool == "Bash" else "(b)"
                print(f"{part} hook {label:44} {figures}   -> {verdict}")
            with_site = w.agentmail / "hooks" / "oxtail-hook-with-site"
            text = Path(hook[0]).read_text()
            lean = "oxtail_py.reservation_check -S reservecheck"
            assert lean in text, "the hook no longer starts the lean check with -S"
            with_site.write_text(text.replace(lean, "oxtail_py.reservation_check '' reservecheck"))
            with_site.chmod(0o700)
            figures, verdict = _time([str(with_site), *hook[1:]],
                                     _payload(project, "Edit", "src/a.py"), env, args.runs)
            print(f"(b) hook {'Edit of a free file, lean check without -S':44} {figures}   "
                  f"-> {verdict}")
            # The floor under the helper: starting the interpreter it runs, nothing else.
            for flags in (["-I"], ["-I", "-S"]):
                figures, _ = _time([sys.executable, *flags, "-c", "pass"], b"", env, args.runs)
                label = f"floor: python {' '.join(flags)} -c pass"
                print(f"    {label:49} {figures}")
            samples = asyncio.run(_reserve_over_mcp(w.server(ME), args.reserves))
            print(f"(c) reserve_files over MCP, 3 paths, 10 holders   {_percentiles(samples)}")
            me = identity_of(os.getpid())
            assert isinstance(me, ProcessIdentity)
            patterns = [normalize(p, project) for p in ("src/a.py", "src/b/", "web/**/*.ts")]
            book = ReservationBook(layout, project)
            core = []
            for _ in range(args.reserves):
                start = time.perf_counter()
                book.reserve(Holder(me, ME), [(p.given, p.pattern, p.regex, p.kind)
                                              for p in patterns],
                             exclusive=True, ttl_s=60, reason="bench")
                core.append((time.perf_counter() - start) * 1000)
            print(f"(c) ReservationBook.reserve in-process (same)      {_percentiles(core)}")
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
