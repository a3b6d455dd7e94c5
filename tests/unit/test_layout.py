"""The layout is pure naming; fsio creates the state root and refuses roots we cannot use."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from oxtail_py.errors import InvalidSessionIdError, StateRootError, UnsafePathError
from oxtail_py.fsio import ensure_private_dir
from oxtail_py.layout import Layout, validate_session_id
from oxtail_py.mailbox import Mailbox
from oxtail_py.settings import Settings


def test_agentmail_home_overrides_the_default(state_root: Path) -> None:
    assert Settings.from_env().root == state_root


def test_a_tilde_in_agentmail_home_expands_to_home_as_the_shell_does() -> None:
    settings = Settings.from_env({"HOME": "/home/u", "AGENTMAIL_HOME": "~/mail"})
    assert settings.root == Path("/home/u/mail")
    assert Settings.from_env({"HOME": "/home/u"}).root == Path("/home/u/.agentmail")


def test_reading_a_path_creates_nothing(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "am")
    _ = (layout.sessions_dir, layout.mailbox("sess-a").inbox, layout.status_file("sess-a"))
    assert not (tmp_path / "am").exists()


def test_root_and_subdirs_are_created_0700_and_loose_modes_tightened(tmp_path: Path) -> None:
    root = tmp_path / "am"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    layout = Layout(root)
    ensure_private_dir(layout.root)
    sessions = ensure_private_dir(layout.sessions_dir)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(sessions).st_mode) == 0o700


def test_root_under_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateRootError) as info:
        ensure_private_dir(Layout(blocker / "agentmail").root)
    assert "AGENTMAIL_HOME" in str(info.value)
    assert info.value.code == "state-root-unusable"


def test_unwritable_root_is_a_clear_error(tmp_path: Path) -> None:
    # sysfs and procfs refuse mkdir even to root (a chmod 0500 directory would not).
    for path in ("/sys/agentmail", "/proc/1/agentmail"):
        with pytest.raises(StateRootError) as info:
            ensure_private_dir(Layout(Path(path)).root)
        assert path in str(info.value)


def test_symlinked_subdir_is_refused(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "am")
    ensure_private_dir(layout.root)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "am" / "mailboxes").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        Mailbox.open(layout, "sess-a")


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "a.b", "pid-12-3.00", "x" * 129, "-lead"])
def test_malformed_session_ids_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSessionIdError):
        validate_session_id(bad)


def test_uuid_session_ids_are_accepted() -> None:
    assert validate_session_id("0199a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b")
