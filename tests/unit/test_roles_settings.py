"""Roles are short words, checked where they are set and where peers' entries are read;
the broadcast and self-heal settings are read once from the environment."""

from __future__ import annotations

import pytest

from oxtail_py.errors import OxtailError
from oxtail_py.registry import SessionEntry, validate_role
from oxtail_py.settings import (
    DEFAULT_BROADCAST_CAP,
    DEFAULT_HEAL_IDLE_S,
    DEFAULT_HEAL_MAX_WAKES,
    Settings,
)


def test_roles_are_trimmed_lowercased_and_shape_checked() -> None:
    assert validate_role("  Reviewer ") == "reviewer"
    assert validate_role("") == ""
    for bad in ("two words", "-lead", "x" * 33, "rôle", "a/b", "@all"):
        with pytest.raises(OxtailError) as err:
            validate_role(bad)
        assert err.value.code == "invalid-role"


@pytest.mark.parametrize("role", ["Reviewer", "two words", "\u202eevil", 7, "x" * 40])
def test_a_peer_entry_with_a_forged_role_is_rejected(role: object) -> None:
    data = {"server_pid": 123, "server_start": "456.78", "state": {"purpose": "", "role": role}}
    with pytest.raises(OxtailError) as err:
        SessionEntry.from_dict(data)
    assert err.value.code == "bad-registry-entry"


def test_a_peer_entry_with_a_good_role_or_none_parses() -> None:
    base = {"server_pid": 123, "server_start": "456.78"}
    assert SessionEntry.from_dict({**base, "state": {"role": "tests"}}).state.role == "tests"
    assert SessionEntry.from_dict(base).state.role == ""


def test_broadcast_and_heal_settings_from_the_environment() -> None:
    default = Settings.from_env({"HOME": "/h"})
    assert (default.broadcast_cap, default.heal_idle_s, default.heal_max_wakes) == (
        DEFAULT_BROADCAST_CAP, DEFAULT_HEAL_IDLE_S, DEFAULT_HEAL_MAX_WAKES,
    )  # fmt: skip
    custom = Settings.from_env(
        {"HOME": "/h", "OXTAIL_BROADCAST_CAP": "3", "OXTAIL_HEAL_IDLE_S": "5",
         "OXTAIL_HEAL_MAX_WAKES": "0", "OXTAIL_DELEGATE_SILENT_S": "9"}
    )  # fmt: skip
    assert (custom.broadcast_cap, custom.heal_idle_s, custom.heal_max_wakes) == (3, 5, 0)
    assert custom.delegate_silent_s == 9
    junk = Settings.from_env({"HOME": "/h", "OXTAIL_BROADCAST_CAP": "-1",
                              "OXTAIL_HEAL_MAX_WAKES": "many"})  # fmt: skip
    assert junk.broadcast_cap == DEFAULT_BROADCAST_CAP
    assert junk.heal_max_wakes == DEFAULT_HEAL_MAX_WAKES


def test_non_ascii_digits_in_a_number_setting_keep_the_default() -> None:
    """str.isdigit() takes "²", int() does not: the setting is junk, not a crash."""
    odd = Settings.from_env({"HOME": "/h", "OXTAIL_HEAL_MAX_WAKES": "\u00b2",
                             "OXTAIL_BROADCAST_CAP": "\u00b2", "OXTAIL_WAKE_CONFIRM_MS": "\u00b2"})
    assert odd.heal_max_wakes == DEFAULT_HEAL_MAX_WAKES
    assert odd.broadcast_cap == DEFAULT_BROADCAST_CAP
    assert odd.wake_confirm_ms is None
