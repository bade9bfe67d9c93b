"""``ecgmon alerts setup``: the Prefect side of alerting, made from the configured channels.

Creates (or updates) one Prefect notification block per channel and the Automations of
``automations/`` pointing at them, against the Prefect API of the environment
(``PREFECT_API_URL``). Idempotent: blocks are saved by name with ``overwrite``, Automations are
matched by name and updated in place, so running it again after a channel changed repoints
everything and creates nothing twice.

Channels: ``ECGMON_ALERT_BLOCK`` (``block-type/name``) names an existing block, used as is;
otherwise each Apprise URL of ``ECGMON_ALERT_URLS`` becomes a block named ``ecgmon-alert-<i>``:
``json://`` / ``jsons://`` a Custom Webhook posting the same JSON as Apprise (``title``,
``message``, ``type``, ``version``), ``slack://`` and Slack webhook URLs a Slack Webhook. Any
other channel (Teams, e-mail, ...): make its block in the Prefect UI and name it in
``ECGMON_ALERT_BLOCK``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import yaml

from ecgmon.errors import ConfigurationError
from ecgmon.resources import automation_files
from ecgmon.settings import Settings

if TYPE_CHECKING:
    from prefect.blocks.abstract import NotificationBlock
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import AutomationCore

BLOCK_PREFIX = "ecgmon-alert"
#: the body Apprise's json:// plugin posts, so one receiver understands both routes
APPRISE_JSON = {"version": "1.0", "title": "{{subject}}", "message": "{{body}}", "type": "info"}


@dataclass
class SetupResult:
    """What ``alerts setup`` made: block references and Automation names, each with its id."""

    blocks: dict[str, UUID] = field(default_factory=dict)
    automations: dict[str, UUID] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def setup_alerts(settings: Settings, files: list[Path] | None = None) -> SetupResult:
    """Save the channels' blocks and create or update the Automations of ``files`` (default: the
    packaged ``automations/*.yaml``) on the configured Prefect API."""
    import httpx
    from prefect.client.orchestration import get_client

    api = configured_api()
    result = SetupResult()
    try:
        result.blocks = channel_blocks(settings)
        with get_client(sync_client=True) as client:
            _upsert_automations(client, files or automation_files(), result)
    except httpx.TransportError as err:
        raise ConfigurationError(f"cannot reach the Prefect API at {api}: {err}") from err
    return result


def configured_api() -> str:
    """The Prefect API these settings talk to; never an ephemeral one (it would vanish)."""
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if not api:
        raise ConfigurationError(
            "no Prefect API configured: export PREFECT_API_URL=http://<host>:4200/api "
            "(the server whose Automations should alert)"
        )
    return api


def _upsert_automations(client: SyncPrefectClient, files: list[Path], result: SetupResult) -> None:
    """Create each Automation of ``files``, or update the one of the same name."""
    for path in files:
        automation = automation_for(path, list(result.blocks.values()))
        existing = client.read_automations_by_name(automation.name)
        if existing:
            client.update_automation(existing[0].id, automation)
            result.automations[automation.name] = existing[0].id
            result.updated.append(automation.name)
        else:
            result.automations[automation.name] = client.create_automation(automation)
            result.created.append(automation.name)


def channel_blocks(settings: Settings) -> dict[str, UUID]:
    """Block document ids of the configured channels, by ``block-type/name``; blocks made from
    Apprise URLs are saved (overwritten) first."""
    from prefect.blocks.core import Block

    if settings.alert_block:
        try:
            block = Block.load(settings.alert_block)
        except ValueError as err:
            raise ConfigurationError(
                f"ECGMON_ALERT_BLOCK names {settings.alert_block}, which the Prefect server does "
                "not have; create it there (UI: Blocks) or unset it to use ECGMON_ALERT_URLS"
            ) from err
        return {settings.alert_block: block._block_document_id}
    urls = settings.alert_url_list()
    if not urls:
        raise ConfigurationError(
            "no channel configured: set ECGMON_ALERT_URLS or ECGMON_ALERT_BLOCK"
        )
    blocks = {}
    for i, url in enumerate(urls, start=1):
        block = block_for_url(url)
        name = f"{BLOCK_PREFIX}-{i}"
        blocks[f"{block.get_block_type_slug()}/{name}"] = block.save(name, overwrite=True)
    return blocks


def block_for_url(url: str) -> NotificationBlock:
    """A Prefect notification block delivering to Apprise URL ``url`` (not saved)."""
    from prefect.blocks.notifications import (
        CustomWebhookNotificationBlock,
        SlackWebhook,
    )

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("json", "jsons"):
        if parts.username or parts.query:
            raise ConfigurationError(
                f"channel {scheme}://: credentials or options in the URL have no Custom Webhook "
                "equivalent; make the block in the Prefect UI and set ECGMON_ALERT_BLOCK"
            )
        http = urlunsplit(("https" if scheme == "jsons" else "http", *parts[1:]))
        return CustomWebhookNotificationBlock(name="ecgmon", url=http, json_data=APPRISE_JSON)
    if scheme == "slack" or parts.netloc.lower() in ("hooks.slack.com", "hooks.slack-gov.com"):
        return SlackWebhook(url=url)
    raise ConfigurationError(
        f"channel {scheme}:// has no Prefect block made by `ecgmon alerts setup`; make one in "
        "the Prefect UI (Blocks) and set ECGMON_ALERT_BLOCK=<block-type>/<name>"
    )


def automation_for(path: Path, block_ids: list[UUID]) -> AutomationCore:
    """The Automation of YAML file ``path`` with one send-notification action per block (the
    file's first action is the template; its placeholder block id is replaced)."""
    from prefect.events.schemas.automations import AutomationCore

    spec = yaml.safe_load(path.read_text())
    template = next(a for a in spec["actions"] if a["type"] == "send-notification")
    others = [a for a in spec["actions"] if a is not template]
    spec["actions"] = [template | {"block_document_id": str(i)} for i in block_ids] + others
    return AutomationCore.model_validate(spec)
