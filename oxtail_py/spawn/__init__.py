"""Spawning helpers: an agent (or the person) starts a Claude Code or Codex client in the
project, in tmux, and works with it through the same mail, wake and identity.

  records.py   the spawn record (spawns/<id>.json) and the live-spawn count
  lineage.py   proving lineage from the kernel's record of each process's environment
  runner.py    the process tmux starts: runs the client, reports how it ended
  launching.py tmux window/session, waiting for the new server, handing the first prompt
  preflight.py the client binary, and Codex without its shared daemon
  spawner.py   Spawner: checks and limits, spawn, stop

This package imports nothing at import time: runner.py must start light.
"""
