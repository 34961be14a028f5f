"""Settings that are checked when the gateway starts, so a wrong value fails loudly at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.counter.rules import counter_rules
from app.db.local_pair import free_port
from app.main import create_app
from app.settings import PUBLISHED_SECRET_KEYS, PublishedSecretKey, Settings


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://gateway.sso.go.th", "https://gateway.sso.go.th"),
        ("https://gateway.sso.go.th/", "https://gateway.sso.go.th"),  # /soap/v1 is appended
        ("http://10.0.0.1:8080/ssogw/", "http://10.0.0.1:8080/ssogw"),  # behind a path prefix
        (" https://[2001:db8::1]:8443 ", "https://[2001:db8::1]:8443"),
        ("", None),  # as an empty variable in a manifest: unset
        (None, None),
    ],
)
def test_a_public_base_url_is_kept_without_a_trailing_slash(
    given: str | None, kept: str | None
) -> None:
    assert Settings(public_base_url=given).public_base_url == kept


@pytest.mark.parametrize(
    "given",
    [
        "gateway.sso.go.th",  # not absolute
        "/soap",
        "ftp://gateway.sso.go.th",
        "https://",
        "https://gateway.sso.go.th/?partner=x",
        "https://gateway.sso.go.th/?",
        "https://gateway.sso.go.th/#top",
        "https://user:secret@gateway.sso.go.th",
        "https://gateway.sso.go.th:port",
        "https://gateway.sso.go.th:70000",
        "https://gateway sso.go.th",
        'https://gateway.sso.go.th/"><x',
    ],
)
def test_a_public_base_url_that_is_not_an_absolute_http_url_is_refused(given: str) -> None:
    with pytest.raises(ValidationError, match="public_base_url"):
        Settings(public_base_url=given)


@pytest.mark.parametrize("value", ["00:00", "09:00", "23:00+00:00"])
def test_a_cut_off_that_would_misplace_the_business_day_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="cut-off"):
        Settings(settlement_cutoff=value)


def test_a_cut_off_in_the_evening_is_taken() -> None:
    assert Settings(settlement_cutoff="22:30").settlement_cutoff == time(22, 30)


# --- the secret key ------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
OWN_KEY = "f3b1c0de-a-key-of-our-own-9c2e71aa0b54"
# Every value the repository gives SSOGW_SECRET_KEY (templates, compose, docs): each is public.
_KEY_IN_FILES = re.compile(r"SSOGW_SECRET_KEY(?::|=|:-)\s*\"?([A-Za-z0-9][A-Za-z0-9_.-]{7,})")


def published_keys_in_the_repository() -> set[str]:
    found: set[str] = set()
    for path in [*ROOT.glob("deploy/**/*.y*ml"), *ROOT.glob("docs/*.md"), ROOT / "README.md"]:
        found.update(_KEY_IN_FILES.findall(path.read_text(encoding="utf-8")))
    return found


def test_the_repository_publishes_keys_and_the_gateway_knows_each_of_them() -> None:
    published = published_keys_in_the_repository()
    assert {"CHANGE-ME-placeholder-not-a-secret"} <= published  # the Kubernetes template's
    assert published <= PUBLISHED_SECRET_KEYS, published - PUBLISHED_SECRET_KEYS


@pytest.mark.parametrize("key", [*sorted(PUBLISHED_SECRET_KEYS), "CHANGE-ME-to-something"])
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "gateway.internal", ""])
def test_a_published_key_is_refused_beyond_loopback(key: str, host: str) -> None:
    with pytest.raises(PublishedSecretKey, match="SSOGW_SECRET_KEY"):
        Settings(secret_key=key, http_host=host).refuse_published_secret_key()
    with pytest.raises(PublishedSecretKey, match="SSOGW_SECRET_KEY"):  # `serve --host H`
        Settings(secret_key=key).refuse_published_secret_key(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_the_demo_key_is_fine_on_loopback(host: str) -> None:
    Settings(http_host=host).refuse_published_secret_key()  # `make run`: nothing raised


def test_a_key_of_ones_own_is_fine_anywhere() -> None:
    Settings(secret_key=OWN_KEY, http_host="0.0.0.0").refuse_published_secret_key()


def test_create_app_refuses_to_build_a_public_gateway_with_the_demo_key() -> None:
    with pytest.raises(PublishedSecretKey, match="SSOGW_SECRET_KEY"):
        create_app(Settings(http_host="0.0.0.0", primary_dsn="postgresql://x@127.0.0.1:1/x"))


@pytest.mark.parametrize("key", [None, "CHANGE-ME-placeholder-not-a-secret"])
def test_ssogw_serve_beyond_loopback_with_a_published_key_exits_at_once(
    key: str | None, tmp_path: Path
) -> None:
    """The real command, in its own process: it must say why and stop, never serve."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOGW_")}
    env.update(SSOGW_DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    if key is not None:
        env["SSOGW_SECRET_KEY"] = key
    done = subprocess.run(
        [sys.executable, "-c", "from app.cli.main import main; raise SystemExit(main())",
         "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: SSOGW_SECRET_KEY is "), done.stderr
    assert "listen on '0.0.0.0'" in done.stderr


def test_the_option_change_period_is_a_setting_with_a_documented_default() -> None:
    assert counter_rules(Settings()).s40.option_change_period == "calendar_year"
    twelve = Settings(s40_option_change_period="twelve_months")
    assert counter_rules(twelve).s40.option_change_period == "twelve_months"
    with pytest.raises(ValidationError, match="s40_option_change_period"):
        Settings(s40_option_change_period="fortnightly")


@pytest.mark.parametrize(
    "rules",
    [
        {"s40_max_months_ahead": 13},
        {"s40_max_months_ahead": -1},
        {"s39_advance_months": 7},
        {"s39_max_overdue_months": 7},
        {"s39_advance_months": -1},
        {"s39_late_surcharge_satang": -100},
        {"counter_ceiling_satang": 0},
    ],
)
def test_rules_that_would_offer_what_one_payment_cannot_hold_are_refused(
    rules: dict[str, int],
) -> None:
    """A payment holds at most 13 months (the ledger's CHECK): a setting that would make the
    inquiry offer more, or that makes no sense, stops the gateway at start-up."""
    with pytest.raises(ValidationError):
        Settings(**rules)  # type: ignore[arg-type]


def test_rules_at_the_limit_of_one_payment_are_taken() -> None:
    rules = Settings(s40_max_months_ahead=12, s39_max_overdue_months=6, s39_advance_months=6)
    assert (rules.s40_max_months_ahead, rules.s39_advance_months) == (12, 6)
