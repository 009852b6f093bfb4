"""Configuration: every key optional, unknown or ill-typed keys named (SPEC §8)."""

from __future__ import annotations

import pytest

from dispatch.config import load_config
from dispatch.errors import ConfigError
from dispatch.policy import PolicySettings


def test_no_file_means_embedded_defaults(tmp_path):
    config = load_config()
    assert config.source is None
    assert config.store.url == "sqlite:///dispatch.db"
    assert config.broker.url == "memory://"
    assert config.policy.marketing_per_year == 4
    assert config.policy.countries["NO"].notice_household == "P30D"
    assert config.policy.countries["SE"].notice_household == "P2M"


def test_dispatch_toml_in_the_working_folder_is_read(tmp_path):
    (tmp_path / "dispatch.toml").write_text('[policy]\nmarketing_per_year = 2\n[broker]\nurl = "memory://"\n')
    config = load_config()
    assert config.policy.marketing_per_year == 2
    assert config.source == "dispatch.toml"


def test_unknown_keys_are_named_with_their_path(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[policy]\nmarketing_per_yer = 3\n[stor]\nurl = 'x'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "stor" in str(caught.value)
    path.write_text("[policy]\nmarketing_per_yer = 3\n")
    with pytest.raises(ConfigError, match=r"unknown configuration key\(s\): policy.marketing_per_yer"):
        load_config(path)


def test_wrong_types_are_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[policy]\nmarketing_per_year = "four"\n')
    with pytest.raises(ConfigError, match=r"policy\.marketing_per_year must be an integer, not a string"):
        load_config(path)


def test_country_overrides_keep_that_countrys_other_defaults():
    config = load_config(overrides={"policy": {"countries": {"NO": {"calling_hours": ["10:00", "20:00"]}}}})
    norway = config.policy.countries["NO"]
    assert norway.calling_hours == ["10:00", "20:00"]
    assert norway.notice_household == "P30D"
    assert norway.registers_exempt_active_customers is True
    with pytest.raises(ConfigError, match=r"policy\.countries\.DK: unknown country"):
        load_config(overrides={"policy": {"countries": {"DK": {}}}})


def test_bad_durations_and_hours_are_reported_when_compiled():
    config = load_config(overrides={"policy": {"countries": {"FI": {"notice_household": "one month"}}}})
    with pytest.raises(ConfigError, match=r"policy\.countries\.FI\.notice_household 'one month' is not a duration"):
        PolicySettings.from_config(config.policy)
    config = load_config(overrides={"policy": {"countries": {"SE": {"calling_hours": ["20:00", "09:00"]}}}})
    with pytest.raises(ConfigError, match="calling_hours must start before they end"):
        PolicySettings.from_config(config.policy)


def test_environment_overrides_secrets(monkeypatch):
    monkeypatch.setenv("DISPATCH_LINK_SECRET", "s3cret")
    monkeypatch.setenv("DISPATCH_BROKER_URL", "redis://127.0.0.1:6379/0")
    config = load_config()
    assert config.links.secret == "s3cret"
    assert config.broker.url == "redis://127.0.0.1:6379/0"


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "broken.toml").write_text("[policy\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "broken.toml")


def test_unknown_channel_section_is_an_error(make_dispatcher):
    with pytest.raises(ConfigError, match=r"unknown channel section\(s\): channels.fax"):
        make_dispatcher({"channels": {"fax": {"number": "1"}}})
    with pytest.raises(ConfigError, match=r"unknown configuration key.*channels\.email\.hostname"):
        make_dispatcher({"channels": {"email": {"hostname": "x"}}})


def test_the_spec_s_from_key_sets_the_channel_sender(make_dispatcher):
    d = make_dispatcher(
        {"channels": {"email": {"from": "Energia Oy <asiakaspalvelu@example.fi>"}, "sms": {"from": "+358401234567"}}}
    )
    assert d.channels["email"].settings.sender == "Energia Oy <asiakaspalvelu@example.fi>"
    assert d.channels["sms"].settings.sender == "+358401234567"
    with pytest.raises(ConfigError, match="give `from` or `sender`, not both"):
        make_dispatcher({"channels": {"sms": {"from": "+358401234567", "sender": "x"}}})
