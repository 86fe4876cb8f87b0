"""The providers' webhook settings are checked when loaded: one-line errors that name the
variable and never show a password or a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from drip.config import Settings, ses_topics, sns_trusted_cas
from drip.errors import ConfigError

from relay_webhooks import POSTMARK_PASSWORD, TOPIC, root_ca, sendgrid_public_key, webhook_settings


def load(tmp_path: Path, **variables: str) -> Settings:
    environ = {f"DRIP_{name.upper()}": value for name, value in variables.items()}
    return Settings.load(environ, toml_path=tmp_path / "absent.toml")


def refusal(tmp_path: Path, **variables: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **variables)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_every_webhook_setting_loads_from_the_environment(tmp_path: Path) -> None:
    values = {name: str(value) for name, value in webhook_settings(tmp_path).items()}
    settings = load(tmp_path, **values)
    assert settings.ses_webhook is True
    assert ses_topics(settings) == {TOPIC}
    assert sns_trusted_cas(settings) == [root_ca()]
    assert settings.postmark_webhook_password == POSTMARK_PASSWORD
    assert load(tmp_path, ses_webhook="false").ses_webhook is False
    assert ses_topics(load(tmp_path)) is None, "no topics listed: any topic"


def test_the_default_trust_is_certifis_bundle(tmp_path: Path) -> None:
    pytest.importorskip("certifi")
    assert len(sns_trusted_cas(load(tmp_path, ses_webhook="true"))) > 50


def test_postmark_credentials_come_in_pairs_and_stay_secret(tmp_path: Path) -> None:
    message = refusal(tmp_path, postmark_webhook_password="hunter2-secret")
    assert "DRIP_POSTMARK_WEBHOOK_USER" in message and "hunter2-secret" not in message
    message = refusal(tmp_path, postmark_webhook_user="a:b", postmark_webhook_password="pw-xyz")
    assert "DRIP_POSTMARK_WEBHOOK_USER" in message and "pw-xyz" not in message


def test_a_sendgrid_key_that_is_not_p256_is_refused(tmp_path: Path) -> None:
    garbage = "not-a-key-" + sendgrid_public_key()[:20]
    message = refusal(tmp_path, sendgrid_public_key=garbage)
    assert "DRIP_SENDGRID_PUBLIC_KEY" in message and garbage not in message
    assert load(tmp_path, sendgrid_public_key=sendgrid_public_key()).sendgrid_public_key


def test_topic_arns_and_the_ca_file_are_checked(tmp_path: Path) -> None:
    assert "DRIP_SES_TOPIC_ARNS" in refusal(tmp_path, ses_topic_arns=f"{TOPIC}, drip-bounces")
    missing = tmp_path / "missing.pem"
    message = refusal(tmp_path, ses_webhook="true", sns_trusted_ca_file=str(missing))
    assert "DRIP_SNS_TRUSTED_CA_FILE" in message and "cannot be read" in message
    (tmp_path / "empty.pem").write_text("no certificates here\n")
    message = refusal(tmp_path, ses_webhook="true", sns_trusted_ca_file=str(tmp_path / "empty.pem"))
    assert "holds no PEM certificate" in message
    assert not load(tmp_path, sns_trusted_ca_file=str(missing)).ses_webhook, "off: not read"
