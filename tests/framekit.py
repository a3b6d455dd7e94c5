"""Reading the hook's delivery text back, the way a careful reader would. Shared by the
framing tests (unit and end to end)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from oxtail_py.framing import BODY_PREFIX, FOOTER

HEADER = re.compile(r"--- message (\d+) of (\d+) · (.*)")


@dataclass
class Parsed:
    """The framing read back the way a careful reader would: headers are lines that
    start with `--- message`, a body is the JSON string on the line after one."""

    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    footers: int = 0
    lines: list[str] = field(default_factory=list)


def parse(text: str) -> Parsed:
    out = Parsed(lines=text.split("\n"))
    expect_body = False
    for line in out.lines:
        if expect_body:
            assert line.startswith(BODY_PREFIX), line
            out.bodies.append(json.loads(line[len(BODY_PREFIX) :]))
            expect_body = False
        elif match := HEADER.fullmatch(line):
            out.headers.append(dict(f.split("=", 1) for f in match.group(3).split(" · ")))
            expect_body = True
        elif line == FOOTER:
            out.footers += 1
    return out
