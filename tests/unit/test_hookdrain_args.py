"""The helper's command line: what the rendered hook passes, and nothing looser."""

from __future__ import annotations

import pytest

from oxtail_py.hookdrain import HookCall, UsageError, parse_args

SID = "5f0c1d2e-3a4b-4c5d-8e9f-001122334455"


def test_the_rendered_hooks_arguments_parse_to_one_typed_call() -> None:
    call = parse_args(["--root", "/srv/am", "--client", "claude", "pretooluse", SID])
    assert call == HookCall("/srv/am", "claude", "pretooluse", SID)
    assert parse_args(["--root", "/srv/am", "sessionstart"]) == HookCall(
        "/srv/am", "claude", "sessionstart", None
    )


def test_an_older_hook_without_root_leaves_the_root_to_settings() -> None:
    assert parse_args(["stop", SID]).root is None


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--root"],
        ["--root", "relative/am", "stop", SID],
        ["--client", "vim", "stop", SID],
        ["pretooluse"],
        ["pretooluse", "../../etc"],
        ["pretooluse", "pid-1"],
        ["pretooluse", SID, "extra"],
        ["sessionstart", SID],
        ["bogus", SID],
    ],
)
def test_anything_else_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_args(argv)
