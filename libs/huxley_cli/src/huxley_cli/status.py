"""`huxley status`: which services are live on the bus, and how they are.

Discovery uses the NATS micro-service API (`$SRV.PING`), so it sees every
instance of every service, wherever it runs; health comes from each service's
`huxley.<site>.health.<service>` endpoint, gathered from all instances.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client

from huxley_runtime.rpc import gather_replies
from huxley_wire.codec import encode
from huxley_wire.messages.common import HealthRequest
from huxley_wire.subjects import SERVICES, Subjects


@dataclass
class InstanceStatus:
    service: str
    instance: str
    micro_id: str
    status: str = "no health reply"
    uptime_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.status == "ok"


async def discover(nc: Client, site: str, wait_s: float = 0.5) -> list[InstanceStatus]:
    found: dict[str, InstanceStatus] = {}
    for raw in await gather_replies(nc, "$SRV.PING", b"", wait_s=wait_s):
        try:
            ping = json.loads(raw)
        except ValueError:
            continue
        meta = ping.get("metadata") or {}
        sites = {meta.get("site"), *str(meta.get("sites") or "").split(",")}
        if not str(ping.get("name", "")).startswith("huxley-") or site not in sites:
            continue
        instance = meta.get("instance", ping.get("id", "?"))
        found[instance] = InstanceStatus(
            service=meta.get("service", ping["name"].removeprefix("huxley-")),
            instance=instance,
            micro_id=ping.get("id", ""),
        )
    subjects = Subjects(site)
    for service in sorted({s.service for s in found.values()}):
        payload = encode(HealthRequest())
        for raw in await gather_replies(nc, subjects.health(service), payload, wait_s=wait_s):
            try:
                health = json.loads(raw)
            except ValueError:
                continue
            entry = found.get(health.get("instance", ""))
            if entry is not None:
                entry.status = str(health.get("status", "?"))
                entry.uptime_s = health.get("uptime_s")
                entry.detail = health.get("detail") or {}
    return sorted(found.values(), key=lambda s: (s.service, s.instance))


def missing_services(statuses: list[InstanceStatus]) -> list[str]:
    live = {s.service for s in statuses if s.healthy}
    return [name for name in SERVICES if name not in live]


def render(statuses: list[InstanceStatus]) -> str:
    rows = [("SERVICE", "INSTANCE", "STATUS", "UPTIME", "DETAIL")]
    for s in statuses:
        uptime = f"{s.uptime_s:.0f}s" if s.uptime_s is not None else "-"
        detail = json.dumps(s.detail, separators=(",", ":"), ensure_ascii=False)
        rows.append((s.service, s.instance, s.status, uptime, detail if s.detail else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]
    missing = missing_services(statuses)
    if missing:
        lines.append(f"not healthy or not running: {', '.join(missing)}")
    return "\n".join(lines)
