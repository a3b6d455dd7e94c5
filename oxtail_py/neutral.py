"""Text someone else wrote, made safe to show: `neutralize`. Pure and lean.

Every character that can steer a terminal or hide text from a reader (C0 controls except
newline and tab, DEL, C1, the Unicode bidi controls, line and paragraph separators, lone
surrogates) becomes a visible stand-in. framing.py re-exports these for every other
caller; the hook's reservation check imports this module alone (json and re only, which
that check loads anyway), so a deny names a peer's text without the framing machinery.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from typing import Final

# Bidi_Control (Trojan Source, CVE-2021-42574: overrides and isolates reorder what a
# reader sees), U+2028/2029 (line breaks to some renderers and to str.splitlines), and
# lone surrogates (not encodable: they would make the whole output fail to print).
_UNSAFE: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
    "\u2066-\u2069\ud800-\udfff]"
)
_DEL_PICTURE: Final = "\u2421"  # ␡


def _stand_in(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␀ ... ␛ (ESC) ... ␟
    if code == 0x7F:
        return _DEL_PICTURE
    return f"<U+{code:04X}>"


def neutralize(text: str) -> str:
    """`text` with every terminal- or reader-steering character made visible; keeps \\n, \\t."""
    return _UNSAFE.sub(_stand_in, text)


def first_unsafe(text: str) -> int | None:
    """The index of the first character `neutralize` would replace, or None."""
    found = _UNSAFE.search(text)
    return None if found is None else found.start()


def quoted(text: str) -> str:
    """`text` neutralised, as one JSON string literal: it cannot hold a line break."""
    return json.dumps(neutralize(text), ensure_ascii=False)
