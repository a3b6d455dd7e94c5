"""A stand-in TUI client that a wake accepts as a real one, because it is one by the rule.

The wake types only into a process whose executable the kernel reports as a Claude Code
or Codex client (oxtail_py/wake/client.py): a native `claude` / `codex` binary, or a
JavaScript runtime running a client package's entry point. The real binaries are too
heavy for these tests, so the fake is the second kind, honestly: the real `node` running
FAKE_TUI installed at `<dir>/node_modules/@anthropic-ai/claude-code/cli.js` (the entry
point of Claude Code's npm releases before the native binary) or at
`<dir>/node_modules/@openai/codex/bin/codex.js`. No name, argv[0] or environment trick,
and no test seam in production code.

FAKE_TUI draws a prompt line, reads keys in raw mode, "submits" a line on Enter into a
transcript where the real client keeps one, and runs a real `python -m oxtail_py serve`
as its child (stdio on FIFOs), so the live process tree proves its pane exactly as with
the real clients (tests/e2e/test_wake_real.py drives those).

Modes: submit (Enter submits), stuck (Enter is ignored: the text stays), deaf (every key
is ignored). Kind codex: typed text followed by Enter in the same burst is a newline, as
in Codex's composer; only a bracketed paste + Enter submits.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path

NODE = shutil.which("node") or "/usr/bin/node"

ENTRY = {
    "claude": "node_modules/@anthropic-ai/claude-code/cli.js",
    "codex": "node_modules/@openai/codex/bin/codex.js",
}

FAKE_TUI = r"""
"use strict";
const fs = require("fs");
const path = require("path");
const cp = require("child_process");

const fifo = process.argv[2];
const kind = process.env.FAKE_TUI_KIND || "claude";
const mode = process.env.FAKE_TUI_MODE || "submit";
const sid = process.env.FAKE_SESSION_ID;
const home = process.env.HOME;

// The server: its shell opens the FIFOs (blocking) and execs python, so the server is
// this process's child, as an MCP server is the client's.
const q = (s) => "'" + s.replace(/'/g, "'\\''") + "'";
const serve = `exec ${q(process.env.FAKE_PYTHON)} -m oxtail_py serve ` +
  `< ${q(fifo + "/in")} > ${q(fifo + "/out")} 2> ${q(fifo + "/err")}`;
cp.spawn("/bin/sh", ["-c", serve], { stdio: "ignore" });

let transcript;
if (kind === "codex") {
  transcript = path.join(home, ".codex/sessions/2026/01/02",
    `rollout-2026-01-02T03-04-05-${sid}.jsonl`);
  fs.mkdirSync(path.dirname(transcript), { recursive: true });
  fs.closeSync(fs.openSync(transcript, "a"));  // a rollout exists from the first prompt on
} else {  // Claude Code writes its transcript at the first prompt
  const projectDir = process.cwd().replace(/[^a-zA-Z0-9]/g, "-");
  transcript = path.join(home, ".claude/projects", projectDir, `${sid}.jsonl`);
}
const glyph = kind === "codex" ? "\u203a" : "\u276f";
let buf = "";

function draw() {
  let out = "\x1b[2J\x1b[H" + `fake ${kind}\r\n` + "\u2500".repeat(40) + "\r\n" +
    glyph + "\u00a0" + buf;
  if (!buf) out += "\x1b[2mAsk me anything\x1b[0m";  // a dim placeholder, as the clients draw
  process.stdout.write(out + "\r\n" + "\u2500".repeat(40) + "\r\n");
}

function submit(line) {
  fs.appendFileSync(path.join(fifo, "submitted.txt"), line + "\n");
  let record;
  if (kind === "codex") {
    const item = { type: "message", role: "user",
      content: [{ type: "input_text", text: line }] };
    record = { timestamp: "2026-01-02T03:04:05Z", type: "response_item", payload: item };
  } else {
    record = { type: "user", message: { role: "user", content: line } };
  }
  fs.mkdirSync(path.dirname(transcript), { recursive: true });
  fs.appendFileSync(transcript, JSON.stringify(record) + "\n");
}

if (process.stdin.isTTY) process.stdin.setRawMode(true);
process.stdout.write("\x1b[?2004h");  // bracketed paste on, as the clients do
draw();
process.stdin.on("data", (data) => {
  if (mode === "deaf") return;
  const text = data.toString("utf8");
  let pasting = false, typed = false, i = 0;
  while (i < text.length) {
    if (text.startsWith("\x1b[200~", i)) { pasting = true; i += 6; continue; }
    if (text.startsWith("\x1b[201~", i)) { pasting = false; i += 6; continue; }
    const ch = text[i++];
    if (ch === "\r" && !pasting) {
      if (kind === "codex" && typed) buf += " ";  // a paste burst: the Enter is a newline
      else if (buf && mode === "submit") { submit(buf); buf = ""; }
    } else if (ch === "\x15") buf = "";
    else if (ch === "\x7f") buf = buf.slice(0, -1);
    else if (ch >= " ") { buf += ch; typed = typed || !pasting; }
  }
  draw();
});
setInterval(() => {}, 1 << 30);  // stay up after stdin ends
"""


def fifo_dir(registry: list[Path]) -> Path:
    """A fresh short directory under /tmp with the server's FIFOs `in` and `out`."""
    path = Path(tempfile.mkdtemp(prefix="oxw-", dir="/tmp"))
    registry.append(path)
    os.mkfifo(path / "in")
    os.mkfifo(path / "out")
    return path


def install(directory: Path, kind: str) -> Path:
    """FAKE_TUI at the `kind` client's package entry point under `directory`."""
    entry = directory / ENTRY[kind]
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(FAKE_TUI)
    return entry


def command(env: dict[str, str], entry: Path, fifo: Path) -> str:
    """The shell command that runs the fake with `env` (for a tmux pane)."""
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {exports} {shlex.quote(NODE)} {shlex.quote(str(entry))} {shlex.quote(str(fifo))}"
