"""The wake's pure parts: what a client's input line holds, and the line a wake types."""

from __future__ import annotations

import pytest

from oxtail_py.settings import Settings
from oxtail_py.wake import WakeLineError, WakeSettings, WakeStrategy, composer_text, wake_line
from oxtail_py.wake.screen import holds_line, sgr_dim, shows_line

SID_ASKER = "aaaaaaaa-0000-4000-8000-00000000000a"

# Screens captured with `capture-pane -e` from Claude Code 2.1.330 and Codex 0.169.0.
RULE = "\x1b[38;5;244m" + "\u2500" * 20 + "\n"
CLAUDE_EMPTY = RULE + "\x1b[39m\u276f\xa0\x1b[7m \x1b[0m\n" + RULE
CLAUDE_TYPED = RULE + "\x1b[39m\u276f\xa0half typed\x1b[7m \x1b[0m\n" + RULE
CLAUDE_HISTORY = "\x1b[48;5;237m\u276f \x1b[38;5;231mhello there\x1b[39m\n" + CLAUDE_EMPTY
CODEX_EMPTY = (
    "\x1b[1m\u203a\x1b[0m\x1b[39m\x1b[49m \x1b[2mAsk Codex to do anything\n"
    "\x1b[0m\x1b[39m\x1b[49m\n  \x1b[38;5;223mgpt-scripted default\x1b[39m \xb7 /tmp/x\n"
)
CODEX_TYPED = "\x1b[1m\u203a\x1b[0m\x1b[39m\x1b[49m half typed\n\n  gpt default\n"
CODEX_COLOR_2 = "\x1b[1m\u203a\x1b[0m \x1b[38;5;2mgreen, not dim\n"
DIALOG = "Allow?\n\u276f 1. Yes\n  2. No\n"
# tmux -e writes only style changes, so a style runs on from the line above.
DIM_RUNS_ON = "\x1b[2mdim hint\n\u276f \x1b[22mtyped after a reset\n"
DIM_FROM_ABOVE = "\x1b[2mdim hint\n\u276f placeholder, still dim\n"


@pytest.mark.parametrize(
    ("screen", "expected"),
    [
        (CLAUDE_EMPTY, ""),
        (CLAUDE_TYPED, "half typed"),
        (CLAUDE_HISTORY, ""),
        (CODEX_EMPTY, ""),
        (CODEX_TYPED, "half typed"),
        (CODEX_COLOR_2, "green, not dim"),
        (DIALOG, "1. Yes"),
        (DIM_RUNS_ON, "typed after a reset"),
        (DIM_FROM_ABOVE, ""),
        ("$ ls\nfile\n$ \n", None),
    ],
)
def test_composer_text_ignores_placeholders_and_history(screen: str, expected: str | None) -> None:
    assert composer_text(screen) == expected


def test_wake_line_is_one_short_ascii_line_naming_the_message() -> None:
    ask = wake_line(SID_ASKER, "0123456789abcdef", "0123456789abcdef")
    note = wake_line("alpha\n; rm -rf /", "fedcba9876543210")
    assert "reply_to=0123456789abcdef" in ask and ask.isascii() and "\n" not in ask
    assert "fedcba9876543210" in note and "alpha" in note
    assert "\n" not in note and ";" not in note and " rm" not in note
    assert len(ask) < 200


@pytest.mark.parametrize(
    "sender", ["\u202eevil", "\x1b[2J", "@/!#", "\u00e9t\u00e9", "", "x" * 500]
)
def test_wake_line_is_printable_ascii_whatever_the_sender(sender: str) -> None:
    line = wake_line(sender, "0123456789abcdef")
    assert line.isascii() and line.isprintable() and len(line) <= 200
    assert not set("@/!#\x1b") & set(line)


@pytest.mark.parametrize(
    ("message_id", "request_id"),
    [("0123456789abcdeF", None), ("x; rm -rf ~", None), ("0123456789abcdef", "\x1b]0;t\x07")],
)
def test_wake_line_refuses_ids_not_of_the_protocols_shape(
    message_id: str, request_id: str | None
) -> None:
    with pytest.raises(WakeLineError) as info:
        wake_line("peer", message_id, request_id)
    assert info.value.code == "bad-wake-line"


def test_wake_settings_come_from_settings() -> None:
    assert WakeSettings.of(Settings.from_env({})) == WakeSettings(WakeStrategy.AUTO, None)
    tmux = Settings.from_env({"OXTAIL_WAKE_STRATEGY": " TMUX ", "OXTAIL_WAKE_CONFIRM_MS": "500"})
    assert WakeSettings.of(tmux) == WakeSettings(WakeStrategy.TMUX, 500)
    off = WakeSettings.of(Settings.from_env({"OXTAIL_WAKE_STRATEGY": "off"}))
    assert off.strategy is WakeStrategy.OFF
    bogus = Settings.from_env({"OXTAIL_WAKE_STRATEGY": "bogus"})
    assert WakeSettings.of(bogus).strategy is WakeStrategy.AUTO and bogus.problems


def test_sgr_dim_skips_colour_arguments() -> None:
    assert sgr_dim("2", False) and not sgr_dim("22", True) and not sgr_dim("", True)
    assert not sgr_dim("38;5;2", False)  # colour 2, not dim
    assert not sgr_dim("38;2;2;2;2", False)  # an RGB colour of 2s
    assert sgr_dim("38;5;244;2", False)


def test_a_line_held_or_shown_is_recognised_however_wrapped() -> None:
    line = wake_line("peer", "0123456789abcdef")
    assert holds_line(line[:30], line) and not holds_line("oxtail", line)
    wrapped = line[:40] + "\n   " + line[40:]
    assert shows_line("junk\n" + wrapped + "\n", line) and not shows_line(line[:40], line)
