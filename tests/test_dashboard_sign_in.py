"""The password sign-in's throttle and log, and single sign-on's e-mail verification.

The throttle reads an injected clock, so waits are stepped over, never slept.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from configs.loader import load_settings
from dashboard import auth, ui
from dashboard.auth import Role, SignInThrottle, Throttled, checked_sign_in, hash_password, oidc_identity
from models.config import ConfigError, Dashboard, DashboardOidc, DashboardSignIn, DashboardUser

RIGHT = "s3cret"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def cheap_dummy_hash(monkeypatch):
    """Unknown names are checked against a hash of the production cost: a cheap one keeps these tests quick."""
    monkeypatch.setattr(auth, "_DUMMY_HASH", hash_password("not a password", iterations=1000))


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The hashes verified, so a test sees a refused sign-in cost no PBKDF2."""
    calls: list[str] = []
    verify = auth.verify_password

    def counting(password: str, encoded: str) -> bool:
        calls.append(encoded)
        return verify(password, encoded)

    monkeypatch.setattr(auth, "verify_password", counting)
    return calls


def _settings(**sign_in: object) -> Dashboard:
    return Dashboard(
        users={
            "ana": DashboardUser(role="analyst", password_hash=hash_password(RIGHT, iterations=1000)),
            "bo": DashboardUser(role="auditor", password_hash=hash_password(RIGHT, iterations=1000)),
        },
        sign_in=DashboardSignIn.model_validate(sign_in),
    )


def _fail(settings: Dashboard, throttle: SignInThrottle, name: str, times: int) -> None:
    for _ in range(times):
        assert checked_sign_in(settings, throttle, name, "wrong") is None


def test_five_failures_lock_the_name_without_hashing_until_the_wait_is_over(clock, hashed):
    settings = _settings()
    throttle = SignInThrottle(settings.sign_in, clock)
    _fail(settings, throttle, "ana", 5)
    hashed.clear()
    refused = checked_sign_in(settings, throttle, "ana", RIGHT)
    assert refused == Throttled(60.0, every_name=False) and hashed == []
    assert checked_sign_in(settings, throttle, " ana ", RIGHT) == Throttled(
        60.0, every_name=False
    )  # as sign_in reads it
    assert checked_sign_in(settings, throttle, "bo", RIGHT).role is Role.AUDITOR  # other names are not held up
    clock.now += 59
    assert checked_sign_in(settings, throttle, "ana", RIGHT) == Throttled(1.0, every_name=False)
    clock.now += 1
    assert checked_sign_in(settings, throttle, "ana", RIGHT).role is Role.ANALYST


def test_each_lockout_doubles_the_wait_up_to_its_cap_and_a_success_resets_it(clock):
    settings = _settings(max_lockout="5m")
    throttle = SignInThrottle(settings.sign_in, clock)
    waits = []
    for _ in range(5):
        _fail(settings, throttle, "ana", 5)
        refused = checked_sign_in(settings, throttle, "ana", RIGHT)
        assert isinstance(refused, Throttled)
        waits.append(refused.retry_after)
        clock.now += refused.retry_after
    assert waits == [60, 120, 240, 300, 300]
    assert checked_sign_in(settings, throttle, "ana", RIGHT).role is Role.ANALYST
    _fail(settings, throttle, "ana", 5)
    assert checked_sign_in(settings, throttle, "ana", RIGHT) == Throttled(60.0, every_name=False)


def test_failures_count_within_the_window_only(clock):
    settings = _settings()
    throttle = SignInThrottle(settings.sign_in, clock)
    _fail(settings, throttle, "ana", 4)
    clock.now += 15 * 60
    _fail(settings, throttle, "ana", 4)
    assert checked_sign_in(settings, throttle, "ana", RIGHT).role is Role.ANALYST


def test_unknown_names_are_throttled_alike_so_the_answer_tells_no_name_apart(clock, hashed):
    settings = _settings()
    throttle = SignInThrottle(settings.sign_in, clock)
    _fail(settings, throttle, "nobody", 5)
    hashed.clear()
    assert checked_sign_in(settings, throttle, "nobody", RIGHT) == Throttled(60.0, every_name=False)
    assert hashed == []


def test_names_sprayed_one_by_one_lock_every_name(clock, hashed):
    settings = _settings(overall_failures=10)
    throttle = SignInThrottle(settings.sign_in, clock)
    for n in range(10):
        _fail(settings, throttle, f"guess-{n}", 1)
    hashed.clear()
    assert checked_sign_in(settings, throttle, "ana", RIGHT) == Throttled(60.0, every_name=True)
    assert hashed == []
    clock.now += 60
    assert checked_sign_in(settings, throttle, "ana", RIGHT).role is Role.ANALYST


def test_the_names_remembered_are_bounded(clock, monkeypatch):
    monkeypatch.setattr(auth, "TRACKED_NAMES", 50)
    settings = _settings(overall_failures=0)
    throttle = SignInThrottle(settings.sign_in, clock)
    for n in range(500):
        throttle.failed(f"guess-{n}")
    assert throttle.names_tracked == 50
    clock.now += 15 * 60 + 1  # all over: the next failure forgets them
    throttle.failed("ana")
    assert throttle.names_tracked == 1


def test_failures_are_logged_with_the_name_escaped_and_never_the_password(clock, caplog):
    settings = _settings()
    throttle = SignInThrottle(settings.sign_in, clock)
    with caplog.at_level(logging.WARNING, logger="dashboard.auth"):
        assert checked_sign_in(settings, throttle, "ana\r\nadmin signed in\x1b[0m", "hunter2") is None
        _fail(settings, throttle, "ana", 5)
    text = caplog.text
    assert "failed for user name 'ana\\r\\nadmin signed in\\x1b[0m'" in text
    assert "\r" not in text and "\x1b" not in text and "hunter2" not in text and "wrong" not in text
    assert "user name 'ana' refused for 60 s after 5 failures" in text
    assert checked_sign_in(settings, throttle, "ana", RIGHT) == Throttled(60.0, every_name=False)


def test_the_throttle_is_configured_under_dashboard_sign_in():
    defaults = load_settings(env={}).dashboard.sign_in
    assert (defaults.failures, defaults.window, defaults.lockout, defaults.max_lockout) == (5, 900, 60, 3600)
    env = {"ACCESSWATCH_DASHBOARD__SIGN_IN__FAILURES": "3", "ACCESSWATCH_DASHBOARD__SIGN_IN__LOCKOUT": "5m"}
    tuned = load_settings(env=env).dashboard.sign_in
    assert (tuned.failures, tuned.lockout) == (3, 300)
    for env, expected in [
        ({"ACCESSWATCH_DASHBOARD__SIGN_IN__FAILURES": "0"}, "dashboard.sign_in.failures = 0"),
        ({"ACCESSWATCH_DASHBOARD__SIGN_IN__LOCKOUT": "2h"}, "max_lockout at least lockout"),
        ({"ACCESSWATCH_DASHBOARD__SIGN_IN__WINDOW": "soon"}, "a duration such as"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_settings(env=env)
        assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_single_sign_on_refuses_an_address_the_provider_has_not_verified():
    settings = Dashboard(oidc=DashboardOidc(enabled=True, roles={"li.wei@example.com": "auditor"}))
    assert oidc_identity(settings, "li.wei@example.com", "Li Wei", False) is None
    assert oidc_identity(settings, "li.wei@example.com", "Li Wei", "false") is None  # some providers send text
    assert oidc_identity(settings, "li.wei@example.com", "Li Wei", True).role is Role.AUDITOR
    # no claim at all: accepted (managed directories often never send it), see oidc_identity
    assert oidc_identity(settings, "li.wei@example.com", "Li Wei").role is Role.AUDITOR


def test_the_sign_in_page_refuses_a_locked_name_and_says_when_to_try_again(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    config = tmp_path / "users.toml"
    config.write_text(
        f'[dashboard.users.ana]\nrole = "analyst"\npassword_hash = "{hash_password(RIGHT, iterations=1000)}"\n'
    )
    for name in [n for n in __import__("os").environ if n.startswith("ACCESSWATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ACCESSWATCH_CONFIG", str(config))
    monkeypatch.setenv("ACCESSWATCH_DATA_DIR", str(tmp_path / "data"))  # the sign-in page opens no store
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    for password in ["wrong"] * 5 + [RIGHT]:
        at.text_input[0].input("ana")
        at.text_input[1].input(password)
        at.button[0].click().run()
    assert not at.exception, at.exception
    [refused] = [e.value for e in at.error]  # the wait counted down by the server's clock: a second may have gone
    assert re.fullmatch(r"Too many failed sign-ins for this user name: try again in \d+ s\.", refused), refused
    assert "_identity" not in at.session_state


def test_the_wait_is_said_in_words():
    assert ui.throttled_message(Throttled(59.6, every_name=False)) == (
        "Too many failed sign-ins for this user name: try again in 60 s."
    )
    assert ui.throttled_message(Throttled(1800, every_name=True)) == (
        "Too many failed sign-ins on this dashboard: try again in 30 min."
    )
