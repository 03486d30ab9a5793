"""Debian's Alertmanager (/usr/bin/prometheus-alertmanager) as a real process routing every alert
to a webhook receiver the test serves (aiohttp), and the repository's rule files with their
`for:` durations shortened for a test of seconds."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.integration.prometheus_support import free_port, stop_process

__all__ = ["ALERTMANAGER", "RULES", "Received", "Webhook", "alertmanager", "rules_shortened", "webhook"]

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus" / "rules"


def rules_shortened(directory: Path, for_s: float) -> list[Path]:
    """The repository's rule files, each alert's `for:` (minutes in production) cut to `for_s`
    seconds but an immediate one (0m) kept; the expressions, labels and annotations are the files'
    own, loaded and dumped untouched."""
    written = []
    for source in sorted(RULES.glob("*.yml")):
        rules = yaml.safe_load(source.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "alert" in rule and _seconds(rule.get("for", "0s")) > 0:
                    rule["for"] = f"{for_s:g}s"
        path = directory / source.name
        path.write_text(yaml.safe_dump(rules, sort_keys=False))
        written.append(path)
    return written


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in sorted(units, key=len, reverse=True):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    raise ValueError(f"{duration!r} is not a duration this test reads")


@dataclass
class Received:
    """One alert as the webhook received it, with when (time.monotonic())."""

    at: float
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass
class Webhook:
    """The alert groups Alertmanager POSTs to the receiver, every alert of each in order."""

    url: str
    alerts: list[Received] = field(default_factory=list)

    def firing(self, alertname: str, **labels: str) -> Received | None:
        return self.posted("firing", alertname, **labels)

    def resolved(self, alertname: str, **labels: str) -> Received | None:
        return self.posted("resolved", alertname, **labels)

    def posted(self, status: str, alertname: str, **labels: str) -> Received | None:
        """The first alert posted with `status` ("firing", "resolved"), `alertname` and `labels`."""
        for alert in self.alerts:
            if alert.status != status or alert.labels.get("alertname") != alertname:
                continue
            if all(alert.labels.get(name) == value for name, value in labels.items()):
                return alert
        return None

    def names(self) -> set[str]:
        return {alert.labels["alertname"] for alert in self.alerts}


@contextlib.asynccontextmanager
async def webhook() -> AsyncIterator[Webhook]:
    """A webhook receiver on a free port, collecting what is POSTed to /alerts."""
    app = web.Application()
    runner = web.AppRunner(app)
    port = free_port()
    hook = Webhook(f"http://127.0.0.1:{port}/alerts")

    async def receive(request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        now = time.monotonic()
        for alert in body["alerts"]:
            hook.alerts.append(Received(now, alert["status"], alert["labels"], alert["annotations"]))
        return web.Response()

    app.router.add_post("/alerts", receive)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield hook
    finally:
        await runner.cleanup()


def _config(receiver_url: str) -> str:
    # Every alert to the webhook at once (group_wait 0s), each change of a group within a second,
    # and no repeat within the test.
    route = {
        "receiver": "test",
        "group_by": ["alertname", "service"],
        "group_wait": "0s",
        "group_interval": "1s",
        "repeat_interval": "1h",
    }
    receiver = {"name": "test", "webhook_configs": [{"url": receiver_url, "send_resolved": True}]}
    return json.dumps({"route": route, "receivers": [receiver]})  # JSON is YAML


@contextlib.contextmanager
def alertmanager(directory: Path, receiver_url: str) -> Iterator[str]:
    """Alertmanager on a free port (no cluster), routing everything to `receiver_url`; its
    host:port."""
    if not ALERTMANAGER.exists():
        pytest.fail(f"{ALERTMANAGER} is missing: `./dev test` installs Debian's prometheus-alertmanager")
    config = directory / "alertmanager.yml"
    config.write_text(_config(receiver_url))
    address = f"127.0.0.1:{free_port()}"
    command = [
        str(ALERTMANAGER),
        f"--config.file={config}",
        f"--storage.path={directory / 'alertmanager'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
    ]
    with (directory / "alertmanager.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield address
        finally:
            stop_process(process)
