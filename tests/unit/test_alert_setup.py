"""``ecgmon alerts setup`` offline: which Prefect block each channel becomes, and the Automations
pointed at the blocks (the live server test is tests/reliability/test_live_prefect.py)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ecgmon.errors import ConfigurationError
from ecgmon.resources import automation_files
from ecgmon.tasks.alert_setup import APPRISE_JSON, automation_for, block_for_url


@pytest.mark.parametrize(
    ("url", "http"),
    [
        ("json://127.0.0.1:8080/alerts", "http://127.0.0.1:8080/alerts"),
        ("jsons://hooks.example.org/a/b", "https://hooks.example.org/a/b"),
    ],
)
def test_json_channels_become_custom_webhooks_posting_apprise_json(url: str, http: str) -> None:
    block = block_for_url(url)
    assert block.get_block_type_slug() == "custom-webhook"
    assert block.url == http and block.json_data == APPRISE_JSON


def test_slack_keeps_its_url_and_others_are_refused() -> None:
    slack = "https://hooks.slack.com/services/T000/B000/XXXX"
    assert block_for_url(slack).get_block_type_slug() == "slack-webhook"
    assert block_for_url(slack).url.get_secret_value() == slack
    assert block_for_url("slack://T000/B000/XXXX").get_block_type_slug() == "slack-webhook"
    for other in ("mailto://user:pw@example.org", "msteams://team/tokenA/tokenB/tokenC"):
        with pytest.raises(ConfigurationError, match="ECGMON_ALERT_BLOCK"):
            block_for_url(other)
    with pytest.raises(ConfigurationError, match="credentials"):
        block_for_url("json://user:pw@example.org/x")


def test_every_automation_gets_one_action_per_block() -> None:
    blocks = [uuid4(), uuid4()]
    for path in automation_files():
        automation = automation_for(path, blocks)
        assert [a.block_document_id for a in automation.actions] == blocks
        assert all(a.body and a.subject for a in automation.actions)


def test_setup_without_a_prefect_api_or_a_reachable_one_says_so(monkeypatch, capsys) -> None:
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from ecgmon.cli.main import main

    monkeypatch.setenv("ECGMON_ALERT_URLS", "json://127.0.0.1:9/alerts")
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["alerts", "setup"]) == 2
    assert "export PREFECT_API_URL" in capsys.readouterr().err
    nowhere = {PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}
    with temporary_settings(nowhere):  # nothing listens on port 9
        assert main(["alerts", "setup"]) == 2
    assert "cannot reach the Prefect API at http://127.0.0.1:9/api" in capsys.readouterr().err
