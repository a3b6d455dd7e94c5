"""The cockpit: see and steer the project from one terminal (issue 12).

  model.py        the typed snapshot every view renders (agents, panes, asks, graph, problems)
  boxes.py        what one mailbox shows an observer (read only, no lock)
  graph.py        wait-for edges and their cycles
  render_text.py  the snapshot as plain text (status) and as JSON (status --json)
  checks.py       status --check: overdue asks, stale unread mail, cycles, hooks
  doctor.py       oxtail-py doctor: registration, hooks, trust, tmux, servers, mailboxes
  operator.py     oxtail-py send: the operator's message, shown as from the person
  feed.py         file events under the state root (watch, log -f): no polling
  app.py          oxtail-py watch: the textual app (imported only by that command)
"""
