"""Settings: environment variables and an optional YAML file, errors naming the variable or file:line."""

from __future__ import annotations

import logging
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest

from remediator.config.settings import _CONVERTERS, FIELDS, SECRET_ENV, Settings, env_name, load_settings, read_settings
from remediator.errors import ConfigError

EXECUTOR = "5F0C2A4E-8B1D-4E3F-A6C7-0D9E8F7A6B5C"


def _write(tmp_path: Path, text: str, name: str = "remediator.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    s = load_settings({})
    assert s == Settings()
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.store_url == "sqlite:///remediator.db"
    assert s.elevation == "pim-assign"
    assert s.admins == ()
    assert s.approvers == ()
    assert s.auto_budget_per_hour == 20
    assert s.undo_window == timedelta(hours=24)
    assert s.reminder_before is None
    assert s.playbooks_dir == Path("playbooks")


def test_every_setting_has_a_converter_and_a_variable() -> None:
    assert set(_CONVERTERS) == {f.name for f in fields(Settings)} == set(FIELDS)
    assert env_name("slack_bot_token") == "SLACK_BOT_TOKEN"
    assert env_name("slack_channel") == "REMEDIATOR_SLACK_CHANNEL"


def test_environment_values_are_parsed() -> None:
    s = load_settings({
        "SLACK_BOT_TOKEN": "xoxb-secret-token",
        "SLACK_SIGNING_SECRET": "signing-secret",
        "REMEDIATOR_SLACK_CHANNEL": "C0123456789",
        "REMEDIATOR_SLACK_API_URL": "https://slack-gov.com/api",
        "REMEDIATOR_SLACK_TEAM_ID": "T0123456789",
        "REMEDIATOR_SLACK_ENTERPRISE_ID": "E0123456789",
        "REMEDIATOR_ADMINS": "U0ADMIN0001, S0614TZR7 U0ADMIN0001",
        "REMEDIATOR_APPROVERS": "S0614TZR7",
        "REMEDIATOR_MIN_QUORUM": "2",
        "REMEDIATOR_AUTO_BUDGET_PER_HOUR": "0",
        "REMEDIATOR_UNDO_WINDOW": "2d",
        "REMEDIATOR_REMINDER_BEFORE": "1h30m",
        "REMEDIATOR_ELEVATION": "standing",
        "REMEDIATOR_EXECUTOR_PRINCIPAL_ID": EXECUTOR,
        "REMEDIATOR_PROTECTED_PRINCIPALS": "11111111-2222-3333-4444-555555555555",
        "REMEDIATOR_STORE_URL": "azure://remediator",
        "REMEDIATOR_PLAYBOOKS_DIR": "/etc/remediator/playbooks",
        "REMEDIATOR_STORM_THRESHOLD": "10",
        "REMEDIATOR_ARM_ENDPOINT": "https://management.usgovcloudapi.net",
    })
    assert s.slack_bot_token == "xoxb-secret-token"
    assert s.slack_signing_secret == "signing-secret"
    assert s.slack_api_url == "https://slack-gov.com/api/"
    assert s.slack_team_id == "T0123456789"
    assert s.slack_enterprise_id == "E0123456789"
    assert s.admins == ("U0ADMIN0001", "S0614TZR7")
    assert s.approvers == ("S0614TZR7",)
    assert s.min_quorum == 2
    assert s.auto_budget_per_hour == 0
    assert s.undo_window == timedelta(days=2)
    assert s.reminder_before == timedelta(hours=1, minutes=30)
    assert s.elevation == "standing"
    assert s.executor_principal_id == EXECUTOR.lower()
    assert s.protected_principals == {EXECUTOR.lower(), "11111111-2222-3333-4444-555555555555"}
    assert s.store_url == "azure://remediator"
    assert s.playbooks_dir == Path("/etc/remediator/playbooks")
    assert s.storm_threshold == 10


def test_secrets_never_show() -> None:
    s = load_settings({"SLACK_BOT_TOKEN": "xoxb-very-secret", "SLACK_SIGNING_SECRET": "sigsecret",
                       "SLACK_APP_TOKEN": "xapp-secret"})
    for text in (repr(s), str(s), str(s.describe())):
        assert "xoxb-very-secret" not in text
        assert "sigsecret" not in text
        assert "xapp-secret" not in text
    assert s.describe()["slack_bot_token"] == "set"
    assert load_settings({}).describe()["slack_bot_token"] == "unset"


def test_executor_is_always_protected() -> None:
    s = Settings(executor_principal_id=EXECUTOR)
    assert EXECUTOR.lower() in s.protected_principals


def test_empty_variable_counts_as_unset() -> None:
    assert load_settings({"REMEDIATOR_SLACK_TEAM_ID": " ", "REMEDIATOR_MIN_QUORUM": ""}) == Settings()


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("REMEDIATOR_AUTO_BUDGET_PER_HOUR", "many", "REMEDIATOR_AUTO_BUDGET_PER_HOUR: expected a whole number from 0 "
                                                    "to 100000, got 'many'"),
        ("REMEDIATOR_MIN_QUORUM", "0", "REMEDIATOR_MIN_QUORUM: expected a whole number from 1 to 10, got '0'"),
        ("REMEDIATOR_UNDO_WINDOW", "24", "REMEDIATOR_UNDO_WINDOW: expected a duration like 30m, 4h or 2d, got '24'"),
        ("REMEDIATOR_UNDO_WINDOW", "60d", "REMEDIATOR_UNDO_WINDOW: must be between 0m and 30d, got '60d'"),
        ("REMEDIATOR_ADMINS", "u0admin0001", "REMEDIATOR_ADMINS: expected Slack user ids (U…/W…) or user-group ids "
                                             "(S…), got 'u0admin0001'; Slack ids are upper-case"),
        ("REMEDIATOR_ADMINS", "alice@example.com", "REMEDIATOR_ADMINS: expected Slack user ids (U…/W…) or user-group "
                                                   "ids (S…), got 'alice@example.com'"),
        ("REMEDIATOR_SLACK_TEAM_ID", "E0123456789", "REMEDIATOR_SLACK_TEAM_ID: expected a Slack workspace id (T…), "
                                                    "got 'E0123456789'"),
        ("REMEDIATOR_ELEVATION", "pim", "REMEDIATOR_ELEVATION: expected one of standing, pim-assign, pim-activate, "
                                        "got 'pim'"),
        ("REMEDIATOR_SLACK_API_URL", "http://slack.example/api/", "REMEDIATOR_SLACK_API_URL: expected an https:// "
                                                                  "URL (http only for localhost), got "
                                                                  "'http://slack.example/api/'"),
        ("REMEDIATOR_EXECUTOR_PRINCIPAL_ID", "executor", "REMEDIATOR_EXECUTOR_PRINCIPAL_ID: expected an object id "
                                                         "(GUID), got 'executor'"),
        ("REMEDIATOR_STORE_URL", "remediator.db", "REMEDIATOR_STORE_URL: expected a store URL such as "
                                                  "sqlite:///remediator.db, got 'remediator.db'"),
        ("REMEDIATOR_SLACK_CHANNEL", "sec ops", "REMEDIATOR_SLACK_CHANNEL: must not contain spaces, got 'sec ops'"),
    ],
)
def test_bad_environment_values_name_the_variable(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({var: value})
    assert str(err.value) == message


def test_localhost_urls_are_allowed_for_tests() -> None:
    s = load_settings({"REMEDIATOR_SLACK_API_URL": "http://127.0.0.1:8080/api/",
                       "REMEDIATOR_ARM_ENDPOINT": "http://localhost:9999"})
    assert s.slack_api_url == "http://127.0.0.1:8080/api/"
    assert s.arm_endpoint == "http://localhost:9999"


def test_unknown_prefixed_variable_is_logged_with_a_hint(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="remediator.config.settings"):
        load_settings({"REMEDIATOR_SLACK_CHANEL": "C0123"})
    assert "unknown setting REMEDIATOR_SLACK_CHANEL ignored; did you mean 'REMEDIATOR_SLACK_CHANNEL'?" in caplog.text


# -- the file ---------------------------------------------------------------------------------


def test_file_values_and_relative_paths(tmp_path: Path) -> None:
    path = _write(tmp_path, """\
# remediator settings
slack_channel: C0123456789
admins: [U0ADMIN0001, S0614TZR7]
auto_budget_per_hour: 5
undo_window: 12h
playbooks_dir: playbooks
exemptions_file: /abs/exemptions.yaml
reminder_before: null
""")
    s = load_settings({}, file=path)
    assert s.slack_channel == "C0123456789"
    assert s.admins == ("U0ADMIN0001", "S0614TZR7")
    assert s.auto_budget_per_hour == 5
    assert s.undo_window == timedelta(hours=12)
    assert s.playbooks_dir == tmp_path / "playbooks"
    assert s.exemptions_file == Path("/abs/exemptions.yaml")
    assert s.reminder_before is None


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "slack_channel: C0FILE00001\nauto_budget_per_hour: 5\n")
    s = load_settings({"REMEDIATOR_SLACK_CHANNEL": "C0ENV000001"}, file=path)
    assert s.slack_channel == "C0ENV000001"
    assert s.auto_budget_per_hour == 5


def test_group_wait_takes_seconds_or_minutes() -> None:
    assert Settings().group_wait == timedelta(seconds=10)
    assert load_settings({"REMEDIATOR_GROUP_WAIT": "0s"}).group_wait == timedelta(0)
    assert load_settings({"REMEDIATOR_GROUP_WAIT": "45s"}).group_wait == timedelta(seconds=45)
    assert load_settings({"REMEDIATOR_GROUP_WAIT": "2m"}).group_wait == timedelta(minutes=2)


def test_config_variable_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "storm_threshold: 0\n")
    assert load_settings({"REMEDIATOR_CONFIG": str(path)}).storm_threshold == 0


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    assert load_settings({}, file=_write(tmp_path, "# nothing yet\n")) == Settings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slack_channel: C0123\nslack_chanel: C0456\n", "{f}:2: slack_chanel: unknown setting; did you mean "
                                                        "'slack_channel'?"),
        ("admins: [U0ADMIN0001]\nslack_bot_token: xoxb-1\n", "{f}:2: slack_bot_token: secrets are read from the "
                                                             "environment only; set SLACK_BOT_TOKEN instead"),
        ("\n\nundo_window: 24\n", "{f}:3: undo_window: a duration needs a unit: 24m, 24h or 24d"),
        ("group_wait: 10\n", "{f}:1: group_wait: a duration needs a unit: 10s or 10m"),
        ("group_wait: 11m\n", "{f}:1: group_wait: must be between 0m and 10m, got '11m'"),
        ("group_wait: 1.5s\n", "{f}:1: group_wait: expected a duration like 10s, 30s or 2m, got '1.5s'"),
        ("group_wait: 601s\n", "{f}:1: group_wait: must be between 0s and 600s, got '601s'"),
        ("min_quorum: true\n", "{f}:1: min_quorum: expected a whole number from 1 to 10, got True"),
        ("admins: [U0ADMIN0001, 42]\n", "{f}:1: admins: expected Slack user ids (U…/W…) or user-group ids (S…), "
                                        "got '42'"),
        ("admins: {a: b}\n", "{f}:1: admins: expected a list (or comma-separated text), got dict"),
        ("- a\n- b\n", "{f}:1: expected a mapping of settings (key: value)"),
        ("slack_channel: [unclosed\n", "{f}:2: while parsing a flow sequence: expected ',' or ']', but got "
                                       "'<stream end>'"),
        ("slack_channel: C0123\nslack_channel: C0456\n", "{f}:2: slack_channel: duplicate key (first defined on "
                                                          "line 1)"),
    ],
)
def test_file_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings({}, file=path)
    assert str(err.value) == message.format(f=path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({}, file=tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: cannot read the configuration file: No such file or directory"


def test_secret_names_are_slacks_standard_ones() -> None:
    assert SECRET_ENV == {"slack_bot_token": "SLACK_BOT_TOKEN", "slack_signing_secret": "SLACK_SIGNING_SECRET",
                          "slack_app_token": "SLACK_APP_TOKEN", "ingest_token": "REMEDIATOR_INGEST_TOKEN"}


def test_the_ingest_token_is_a_secret_from_the_environment_only(tmp_path: Path) -> None:
    s = load_settings({"REMEDIATOR_INGEST_TOKEN": "a-long-enough-ingest-token"})
    assert s.ingest_token == "a-long-enough-ingest-token"
    assert "a-long-enough" not in repr(s)
    assert s.describe()["ingest_token"] == "set"
    path = tmp_path / "settings.yaml"
    path.write_text("ingest_token: in-a-file\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings({}, file=path)
    assert str(err.value) == (f"{path}:1: ingest_token: secrets are read from the environment only; "
                              "set REMEDIATOR_INGEST_TOKEN instead")


def test_elevation_settings_for_the_factory() -> None:
    s = load_settings({"REMEDIATOR_ELEVATION": "pim-activate", "REMEDIATOR_EXECUTOR_PRINCIPAL_ID": EXECUTOR,
                       "REMEDIATOR_PIM_DURATION": "10m"})
    e = s.elevation_settings()
    assert (e.strategy, e.executor_principal_id, e.duration) == ("pim-activate", EXECUTOR.lower(),
                                                                 timedelta(minutes=10))


def test_approver_roles_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, "approver_roles:\n  security-oncall: [S0614TZR7]\n"
                            "  security-leads: U05K8NQ2R7T, U05M3XH9V4P\n")
    assert load_settings({}, file=path).approver_roles == {"security-oncall": ("S0614TZR7",),
                                                           "security-leads": ("U05K8NQ2R7T", "U05M3XH9V4P")}
    env = {"REMEDIATOR_APPROVER_ROLES": "security-oncall=S0614TZR7; platform-owners=S0615PLT8Q U05K8NQ2R7T;"}
    settings = load_settings(env, file=path)  # the environment wins, whole
    assert settings.approver_roles == {"security-oncall": ("S0614TZR7",), "platform-owners": ("S0615PLT8Q",
                                                                                              "U05K8NQ2R7T")}
    assert settings.describe()["approver_roles"] == "platform-owners=S0615PLT8Q,U05K8NQ2R7T;security-oncall=S0614TZR7"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("security-oncall", "expected role=ids separated by ';'"),
        ("Security_Oncall=S0614TZR7", "expected a role name in lower-case kebab (security-oncall), got "
                                      "'Security_Oncall'"),
        ("security-oncall=s0614tzr7", "security-oncall: expected Slack user ids (U…/W…) or user-group ids (S…), got "
                                      "'s0614tzr7'; Slack ids are upper-case"),
        ("security-oncall=", "security-oncall: no Slack ids (a role nobody holds means nobody can approve)"),
        ("a=S0614TZR7;a=U05K8NQ2R7T", "role 'a' is given twice"),
    ],
)
def test_bad_approver_roles_name_the_variable(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"REMEDIATOR_APPROVER_ROLES": value})
    assert str(err.value).startswith(f"REMEDIATOR_APPROVER_ROLES: {message}")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """A deployment learns everything it must fix from one start, not one problem per restart."""
    config = tmp_path / "c.yaml"
    config.write_text("min_quorum: nine\nstorm_treshold: 3\nslack_bot_token: xoxb-1\n", encoding="utf-8")
    env = {"REMEDIATOR_CONFIG": str(config), "REMEDIATOR_ELEVATION": "root", "REMEDIATOR_UNDO_WINDOW": "soon"}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    problems = caught.value.problems
    assert [p.split(": ")[0 if p.startswith("REMEDIATOR") else 1] for p in problems] == [
        "min_quorum", "storm_treshold", "slack_bot_token", "REMEDIATOR_ELEVATION", "REMEDIATOR_UNDO_WINDOW"]
    assert "did you mean 'storm_threshold'?" in problems[1]
    assert str(caught.value).endswith("(and 4 more)")
    settings, found = read_settings(env)
    assert found == list(problems)
    assert settings.min_quorum == Settings().min_quorum  # the wrong values are left at their defaults
