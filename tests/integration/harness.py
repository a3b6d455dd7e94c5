"""Real oxtail MCP servers in real tmux panes, driven by the real MCP client library.

A server runs inside a pane of a private tmux server (its own socket), so the
live process tree proves which pane hosts it. Its stdio is wired to two FIFOs;
the test side speaks MCP over them with the SDK's line transport.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio
from mcp.client import Client
from mcp.server.stdio import stdio_server
from mcp.types import CallToolResult

REPO = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


async def await_until(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
) -> Any:
    """wait_until for async tests: sleeping here lets the event loop (the MCP client) run."""
    with anyio.fail_after(timeout):
        while not (value := predicate()):
            await anyio.sleep(0.005)
    return value


@dataclass
class PrivateTmux:
    socket: Path

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {args}: {done.stderr}")
        return done.stdout

    def new_session(self, name: str, cwd: Path, command: str | None = None) -> str:
        args = [
            "new-session",
            "-d",
            "-s",
            name,
            "-c",
            str(cwd),
            "-x",
            "200",
            "-y",
            "50",
            "-P",
            "-F",
            "#{pane_id}",
        ]
        return self.run(*args, *([command] if command else [])).strip()

    def split(self, session: str, cwd: Path, command: str) -> str:
        return self.run(
            "split-window", "-d", "-t", session, "-c", str(cwd), "-P", "-F", "#{pane_id}", command
        ).strip()

    def kill(self) -> None:
        self.run("kill-server", check=False)


@contextlib.contextmanager
def private_tmux() -> Iterator[PrivateTmux]:
    # Unix socket paths are limited to ~107 bytes: keep it short, under /tmp.
    directory = Path(tempfile.mkdtemp(prefix="oxt-", dir="/tmp"))
    server = PrivateTmux(directory / "s")
    try:
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)


class _FifoWriter:
    """The server's stdin FIFO as the SDK's stdout writer sees it. Closing it (EOF: the
    server exits) waits for a write in flight, and a write after the close is dropped:
    the SDK's writer task can still be flushing a last message in its worker thread when
    the transport ends, and closing the file under it raised "I/O operation on closed
    file" from the task group (an idle client closing, once in a few runs)."""

    def __init__(self, file: anyio.AsyncFile[str]) -> None:
        self._file = file
        self._lock = anyio.Lock()
        self._closed = False

    async def write(self, text: str) -> None:
        async with self._lock:
            if not self._closed:
                await self._file.write(text)

    async def flush(self) -> None:
        async with self._lock:
            if not self._closed:
                await self._file.flush()

    async def aclose(self) -> None:
        async with self._lock:
            self._closed = True
            await self._file.aclose()


@dataclass
class ServerProc:
    """One oxtail server running in a tmux pane, reachable over FIFOs."""

    name: str
    pane: str
    fifo_dir: Path
    env: dict[str, str]
    pid: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        # Open order mirrors the pane's shell: it opens `in` for reading, then `out`
        # for writing; each FIFO open blocks until the other end is there.
        to_server = _FifoWriter(await anyio.open_file(self.fifo_dir / "in", "w"))
        from_server = await anyio.open_file(self.fifo_dir / "out", "r")

        @contextlib.asynccontextmanager
        async def transport() -> AsyncIterator[Any]:
            stdout = cast("anyio.AsyncFile[str]", to_server)
            async with stdio_server(stdin=from_server, stdout=stdout) as streams:
                try:
                    yield streams
                finally:
                    # EOF on the server's stdin makes it exit and close its stdout,
                    # which ends our reader thread (blocked in a FIFO read).
                    await to_server.aclose()

        async with Client(transport(), mode="legacy") as client:
            yield client


def launch_in_pane(
    tmux: PrivateTmux,
    *,
    session: str,
    cwd: Path,
    env: dict[str, str],
    as_client: str | None = None,
    split_into: str | None = None,
) -> ServerProc:
    """Start `python -m oxtail_py serve` in a new tmux session (or split of one).

    as_client="claude" runs it under a parent process named `claude`, so client
    detection by process ancestry sees a Claude Code above it.
    """
    fifo_dir = Path(tempfile.mkdtemp(prefix="oxf-", dir="/tmp"))
    os.mkfifo(fifo_dir / "in")
    os.mkfifo(fifo_dir / "out")
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    serve = (
        f"env {exports} {shlex.quote(sys.executable)} -m oxtail_py serve "
        f"< {fifo_dir}/in > {fifo_dir}/out 2> {fifo_dir}/err; echo $? > {fifo_dir}/rc"
    )
    if as_client:
        wrapper = fifo_dir / as_client
        wrapper.write_text(f"#!/bin/sh\n{serve}\nsleep 600\n")
        wrapper.chmod(0o755)
        command = f"sh {wrapper}"
    else:
        command = f"sh -c {shlex.quote(serve + '; sleep 600')}"
    if split_into:
        pane = tmux.split(split_into, cwd, command)
    else:
        pane = tmux.new_session(session, cwd, command)
    return ServerProc(session, pane, fifo_dir, env)


def result_data(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, result.content
    return dict(result.structured_content)


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    return result_data(result)


def error_code(result: CallToolResult) -> str:
    assert result.is_error, f"expected an error, got {result.structured_content}"
    return str(result_data(result)["error"])


async def first_message(client: Client) -> dict[str, Any]:
    """Take messages with read_my_messages until one has arrived; return the first."""
    while True:
        inbox = ok(await client.call_tool("read_my_messages", {}))
        if inbox["messages"]:
            return dict(inbox["messages"][0])
        await anyio.sleep(0.005)


async def call_into(
    result: dict[str, Any], client: Client, tool: str, args: dict[str, Any]
) -> None:
    """Call `tool` and put its structured result into `result` (for a background task)."""
    result.update(ok(await client.call_tool(tool, args)))
