"""OXTAIL_RESERVATIONS: enforce (default) | advisory | off; anything else is reported."""

from __future__ import annotations

import pytest

from oxtail_py.settings import Settings


@pytest.mark.parametrize(("raw", "mode"), [
    (None, "enforce"), ("", "enforce"), ("enforce", "enforce"), ("Advisory", "advisory"),
    (" off ", "off"),
])
def test_the_mode_is_read_once_from_the_environment(raw: str | None, mode: str) -> None:
    env = {} if raw is None else {"OXTAIL_RESERVATIONS": raw}
    settings = Settings.from_env(env)
    assert settings.reservations_mode == mode and settings.problems == ()


def test_an_unknown_mode_enforces_and_says_so() -> None:
    settings = Settings.from_env({"OXTAIL_RESERVATIONS": "strict"})
    assert settings.reservations_mode == "enforce"
    assert any("OXTAIL_RESERVATIONS" in p for p in settings.problems)
