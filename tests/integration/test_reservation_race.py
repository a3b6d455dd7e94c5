"""Eight processes reserve the same file exclusively at the same moment: exactly one gets
it, and every other one is told who did (the grant is decided under the project lock)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from oxtail_py.layout import Layout
from oxtail_py.reservations import ReservationBook

RACER = r"""
import json, os, sys, time
from pathlib import Path
from oxtail_py.layout import Layout
from oxtail_py.procs import self_identity
from oxtail_py.reservation_patterns import normalize
from oxtail_py.reservations import Holder, ReservationBook
root, project, go, done, n = sys.argv[1:6]
layout, project = Layout(Path(root)), Path(project)
p = normalize("src/*.py" if int(n) % 2 else "src/app.py", project)
while not os.path.exists(go):
    time.sleep(0.001)
sid = f"aaaaaaaa-0000-4000-8000-{int(n):012d}"
got = ReservationBook(layout, project).reserve(
    Holder(self_identity(), sid), [(p.given, p.pattern, p.regex, p.kind)],
    exclusive=True, ttl_s=60, reason=f"racer {n}")
print(json.dumps({"granted": len(got.granted),
                  "holders": sorted({c.theirs.holder.session_id for c in got.conflicts})}),
      flush=True)
while not os.path.exists(done):  # stay alive: a dead holder would free the file
    time.sleep(0.01)
"""


def test_concurrent_exclusive_reservations_grant_exactly_one(tmp_path: Path,
                                                              layout: Layout) -> None:
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "app.py").write_text("")
    go, done = tmp_path / "go", tmp_path / "done"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(layout.root), str(project),
                                str(go), str(done), str(n)], stdout=subprocess.PIPE, text=True)
              for n in range(8)]
    try:
        time.sleep(0.5)  # all started and spinning on `go`
        go.touch()
        results = [json.loads(r.stdout.readline()) for r in racers if r.stdout is not None]
        winners = [r for r in results if r["granted"] == 1]
        assert len(winners) == 1, results
        live = ReservationBook(layout, project).all()
        assert len(live) == 1
        winner_sid = live[0].holder.session_id
        assert all(r["holders"] == [winner_sid] for r in results if r["granted"] == 0)
    finally:
        done.touch()
        for r in racers:
            r.wait(timeout=30)
