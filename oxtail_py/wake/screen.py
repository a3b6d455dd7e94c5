"""Reading a client's screen (`capture-pane -e` output): pure functions, no tmux here.

The one question a wake asks of a screen is what sits in the client's input line: an empty
line may be typed into, a line with text in it belongs to whoever is typing, and no input
line at all (a dialog, another program) is not a composer.
"""

from __future__ import annotations

import re
from typing import Final

# The prompt glyphs of the clients' input lines: Claude Code's U+276F and Codex's U+203A.
PROMPT_GLYPHS: Final = ("\u276f", "\u203a")

_ESCAPE: Final = re.compile(r"\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.?")


def sgr_dim(params: str, dim: bool) -> bool:
    """The dim attribute after an SGR sequence with `params` (colour arguments skipped)."""
    codes = [int(c) if c.isdigit() else 0 for c in re.split("[;:]", params)] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code in (38, 48, 58):  # 38;5;N or 38;2;R;G;B
            i += 3 if i + 1 < len(codes) and codes[i + 1] == 5 else 5
            continue
        if code in (0, 22):
            dim = False
        elif code == 2:
            dim = True
        i += 1
    return dim


def undimmed_lines(screen: str) -> list[str]:
    """Each line of a styled screen without the characters drawn dim (placeholders are).
    The style runs on across lines: tmux -e writes only changes from the previous cell."""
    lines: list[str] = []
    dim = False
    for line in screen.split("\n"):
        out: list[str] = []
        pos = 0
        for match in _ESCAPE.finditer(line):
            if not dim:
                out.append(line[pos : match.start()])
            pos = match.end()
            if match.group(2) == "m":
                dim = sgr_dim(match.group(1), dim)
        if not dim:
            out.append(line[pos:])
        lines.append("".join(out))
    return lines


def composer_text(screen: str) -> str | None:
    """What is typed into the client's input line ("" when empty, its dim placeholder
    ignored), or None when no input line is on the screen (a dialog, another program).

    The input line is the lowest line starting with a prompt glyph: history above it
    repeats the glyph, and a selection dialog's cursor uses it too (then the "text" is an
    option, and nobody may type into it).
    """
    raws = screen.split("\n")
    visible_lines = undimmed_lines(screen)
    for index in range(len(raws) - 1, -1, -1):
        plain = _ESCAPE.sub("", raws[index]).lstrip(" \u2502")
        if not plain.startswith(PROMPT_GLYPHS):
            continue
        visible = visible_lines[index]
        cut = max(visible.find(g) for g in PROMPT_GLYPHS)
        text = visible[cut + 1 :] if cut >= 0 else visible
        return text.replace("\xa0", " ").strip()
    return None


def holds_line(typed: str, line: str) -> bool:
    """The composer's first line is (the start of) our line: it was typed, not sent."""
    return len(typed) >= 8 and line.startswith(typed[:60])


def shows_line(screen: str, line: str) -> bool:
    """`line` is on the screen, however the client wrapped it."""
    return _flat(line) in _flat(screen)


def _flat(text: str) -> str:
    return re.sub(r"\s+", "", text)
