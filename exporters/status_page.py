"""The local status page: the centre at a glance for the site admin, even with the ISP down.

`status_document(state)` is the plain summary (served as /status.json); `render_page(state)`
turns that same summary into one self-contained HTML page: inline CSS, no external assets, a
few lines of JS that re-fetch the page every 5 s and swap its content, readable on a phone.
Every text from devices or config is escaped; nothing secret is in the state to begin with.
"""

from __future__ import annotations

import html
import time
from typing import Any

from agent.checks.link_quality import LinkStatus
from agent.kinds import KINDS
from agent.state import AgentState, RouterStatus

REFRESH_SECONDS = 5


def _loss(link: LinkStatus) -> float | None:
    """Share of the latest run's probes lost, over all targets of the link."""
    sent = sum(t.sent for t in link.targets)
    return None if not sent else 1 - sum(t.received for t in link.targets) / sent


def _rtt(link: LinkStatus) -> float | None:
    rtts = [t.rtt_avg for t in link.targets if t.rtt_avg is not None]
    return min(rtts) if rtts else None


def _link_entries(state: AgentState) -> list[dict[str, Any]]:
    """One entry per WAN port of a router, joined with the probe link that measures it."""
    probes = dict(state.links)
    entries = []
    for device in state.devices.values():
        status = KINDS[device.kind].router(device.status)
        if status is None:
            continue
        active = status.wan.active if status.wan else None
        for port in status.interfaces:
            if port.role != "wan":
                continue
            link = next(
                (
                    probes.pop(name)
                    for name, p in list(probes.items())
                    if p.device == device.name and p.interface in (None, port.name)
                ),
                None,
            )
            up = bool(device.up) and port.oper_up is not False
            if link is not None:
                up = up and link.up
            entries.append(
                {
                    "name": link.name if link else f"{device.name} {port.name}",
                    "device": device.name,
                    "interface": port.name,
                    "up": up,
                    "active": active == port.name,
                    # a silent router's last rates are not true now (as on /metrics)
                    "receive_bps": port.receive_bps if device.up else None,
                    "transmit_bps": port.transmit_bps if device.up else None,
                    "receive_capacity_bps": port.receive_capacity_bps,
                    "transmit_capacity_bps": port.transmit_capacity_bps,
                    "probe_loss_ratio": _loss(link) if link else None,
                    "probe_rtt_seconds": _rtt(link) if link else None,
                }
            )
    for link in probes.values():  # probed links whose router port is not polled
        entries.append(
            {
                "name": link.name,
                "device": link.device,
                "interface": link.interface,
                "up": link.up,
                "active": False,
                "receive_bps": None,
                "transmit_bps": None,
                "receive_capacity_bps": None,
                "transmit_capacity_bps": None,
                "probe_loss_ratio": _loss(link),
                "probe_rtt_seconds": _rtt(link),
            }
        )
    return entries


def status_document(state: AgentState, now: float | None = None) -> dict[str, Any]:
    """What the page shows, as plain data (the /status.json answer)."""
    now = time.time() if now is None else now
    return {
        "site": {"id": state.site_id, "name": state.site_name},
        "version": state.version,
        "generated": now,
        "links": _link_entries(state),
        # the centre's power source now and the hours on each since the agent started
        "power": None
        if state.power is None
        else {"source": state.power.source, "seconds": dict(state.power.seconds)},
        "ups": [
            card for d in state.devices.values() if (card := KINDS[d.kind].card(d)) is not None
        ],
        "devices": [
            {
                "name": d.name,
                "kind": d.kind,
                "up": d.up,
                "reason": d.reason,
                "message": d.message,
                "last_success": d.last_success,
                "last_success_age_seconds": (
                    None if d.last_success is None else max(0.0, now - d.last_success)
                ),
                # a switch's access ports: how many workstations are connected (while it answers)
                "access_ports": _access(KINDS[d.kind].router(d.status) if d.up else None),
            }
            for d in state.devices.values()
        ],
    }


def _access(status: RouterStatus | None) -> dict[str, int] | None:
    if status is None or status.access is None:
        return None
    return {"up": status.access.ports_up, "present": status.access.ports}


# --- HTML -----------------------------------------------------------------------------------


def ago(seconds: float | None) -> str:
    """'12 s ago', '4 min ago', '3 h ago', 'never'."""
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def mbps(bps: float | None) -> str:
    if bps is None:
        return "?"
    value = bps / 1e6
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(text: str, tone: str) -> str:
    return f'<span class="badge {tone}">{_e(text)}</span>'


def _rate(label: str, rate: float | None, capacity: float | None) -> str:
    if rate is None:
        return f"<div>{label} measuring…</div>"
    if not capacity:
        return f"<div>{label} {mbps(rate)} Mb/s</div>"
    share = rate / capacity
    tone = "bad" if share >= 0.9 else "warn" if share >= 0.7 else "ok"
    width = max(0.0, min(100.0, share * 100))
    return (
        f"<div>{label} {mbps(rate)} of {mbps(capacity)} Mb/s ({share:.0%})</div>"
        f'<div class="bar"><i class="{tone}" style="width:{width:.0f}%"></i></div>'
    )


def _link_card(link: dict[str, Any]) -> str:
    state = _badge("Up", "ok") if link["up"] else _badge("Down", "bad")
    active = ' <span class="muted">carrying traffic</span>' if link["active"] else ""
    where = " ".join(_e(p) for p in (link["device"], link["interface"]) if p)
    lines = [
        f'<div class="head"><b>{_e(link["name"])}</b>{state}</div>',
        f'<div class="muted">{where}{active}</div>' if where or active else "",
    ]
    if link["receive_bps"] is not None or link["receive_capacity_bps"] is not None:
        lines.append(_rate("↓", link["receive_bps"], link["receive_capacity_bps"]))
        lines.append(_rate("↑", link["transmit_bps"], link["transmit_capacity_bps"]))
    loss = link["probe_loss_ratio"]
    if loss is not None:
        rtt = link["probe_rtt_seconds"]
        rtt_text = f", {rtt * 1000:.0f} ms" if rtt is not None else ""
        tone = "bad" if loss >= 0.5 else "warn" if loss > 0 else ""
        lines.append(f'<div class="{tone}t">probe loss {loss:.0%}{rtt_text}</div>')
    return '<section class="card">' + "".join(lines) + "</section>"


_UPS_STATE_BADGES = {
    "self_test": ("Self-test", "muted"),
    "calibration": ("Calibrating", "muted"),
    "bypass": ("On bypass", "warn"),
    "off": ("Output off", "bad"),
}


def _genset_card(genset: dict[str, Any]) -> str:
    if genset["running"] is None:
        state = _badge("No answer", "bad")
    elif genset["on_load"]:
        state = _badge("On load", "warn")  # it runs the centre: mains is out
    elif genset["running"]:
        state = _badge("Running", "muted")
    else:
        state = _badge("Stopped", "ok" if genset["mode"] in (None, "auto") else "warn")
    lines = [f'<div class="head"><b>{_e(genset["name"])}</b>{state}</div>']
    facts = []
    if genset["mode"] is not None:
        facts.append(f"mode {genset['mode']}")
    if genset["fuel_percent"] is not None:
        facts.append(f"fuel {genset['fuel_percent']:.0f}%")
    if genset["power_watts"] is not None and genset["on_load"]:
        facts.append(f"{genset['power_watts'] / 1000:.1f} kW")
    if genset["battery_volts"] is not None:
        facts.append(f"battery {genset['battery_volts']:.1f} V")
    if facts:
        lines.append(f"<div>{_e(', '.join(facts))}</div>")
    if genset["alarms"]:
        alarms = ", ".join(a.replace("_", " ") for a in genset["alarms"])
        lines.append(f'<div class="badt">alarm: {_e(alarms)}</div>')
    return '<section class="card">' + "".join(lines) + "</section>"


def _ups_card(ups: dict[str, Any]) -> str:
    if ups["on_battery"] is None:
        state = _badge("No answer", "bad")
    elif ups["power_state"] in _UPS_STATE_BADGES:  # not a cut: shown as what it is
        state = _badge(*_UPS_STATE_BADGES[ups["power_state"]])
    elif ups["on_battery"]:
        state = _badge("On battery", "warn" if not ups["low_battery"] else "bad")
    else:
        state = _badge("On mains", "ok")
    lines = [f'<div class="head"><b>{_e(ups["name"])}</b>{state}</div>']
    if ups["model"]:
        lines.append(f'<div class="muted">{_e(ups["model"])}</div>')
    facts = []
    if ups["charge_percent"] is not None:
        facts.append(f"charge {ups['charge_percent']:.0f}%")
    if ups["runtime_seconds"] is not None:
        facts.append(f"runtime {duration(ups['runtime_seconds'])}")
    if ups["input_volts"] is not None and not ups["on_battery"]:
        facts.append(f"mains {ups['input_volts']:.0f} V")
    if facts:
        lines.append(f"<div>{_e(', '.join(facts))}</div>")
    if ups["charge_percent"] is not None:
        tone = "bad" if ups["low_battery"] else "warn" if ups["on_battery"] else "ok"
        width = max(0.0, min(100.0, ups["charge_percent"]))
        lines.append(f'<div class="bar"><i class="{tone}" style="width:{width:.0f}%"></i></div>')
    health = ups["battery_health_ratio"]
    battery = []
    if ups["replace_battery"]:
        battery.append('<span class="badt">replace battery</span>')
    if health is not None:
        tone = "bad" if health < 0.6 else "warn" if health < 0.8 else ""
        battery.append(f'<span class="{tone}t">battery health {health:.0%}</span>')
    if ups["outages"] is not None:
        last = ups["last_outage_seconds"]
        last_text = f", last {duration(last)}" if last is not None else ""
        battery.append(f"outages {ups['outages']}{_e(last_text)}")
    if battery:
        lines.append(f"<div>{' · '.join(battery)}</div>")
    return '<section class="card">' + "".join(lines) + "</section>"


_SOURCE_BADGES = {
    "grid": ("On grid", "ok"),
    "solar": ("On solar", "ok"),
    "battery": ("On battery", "warn"),
    "unknown": ("Source unknown", "muted"),
}


def _inverter_card(card: dict[str, Any]) -> str:
    source = card["load_source"]
    state = _badge("No answer", "bad") if source is None else _badge(*_SOURCE_BADGES[source])
    lines = [f'<div class="head"><b>{_e(card["name"])}</b>{state}</div>']
    facts = [
        f"{label} {card[key]:.0f} W"
        for label, key in (("PV", "pv_watts"), ("load", "load_watts"), ("grid", "grid_watts"))
        if card[key] is not None
    ]
    if card["charge_percent"] is not None:
        facts.append(f"battery {card['charge_percent']:.0f}% {card['battery_state'] or ''}".strip())
    if card["grid_present"] is False:
        facts.append("no grid")
    if facts:
        lines.append(f"<div>{_e(', '.join(facts))}</div>")
    return '<section class="card">' + "".join(lines) + "</section>"


def _device_row(device: dict[str, Any]) -> str:
    if device["up"] is None:
        state = _badge("Waiting", "muted")
    elif device["up"]:
        state = _badge("OK", "ok")
    else:
        state = _badge(f"Down: {device['reason']}", "bad")
    detail = (
        f'<div class="muted small">{_e(device["message"])}</div>'
        if device["up"] is False and device["message"]
        else ""
    )
    access = device["access_ports"]
    ports = f" · {access['up']} of {access['present']} access ports up" if access else ""
    return (
        f'<li><div class="head"><b>{_e(device["name"])}</b>{state}</div>'
        f'<div class="muted">{_e(device["kind"])} · last answer '
        f"{_e(ago(device['last_success_age_seconds']))}{ports}</div>{detail}</li>"
    )


_STYLE = """
:root{color-scheme:light dark;--ok:#1b7f3b;--warn:#b26a00;--bad:#c62828;--fg:#1d2125;
--muted:#5f6b76;--card:#fff;--bg:#eef1f4}
@media (prefers-color-scheme:dark){:root{--fg:#e8eaed;--muted:#9aa4ad;--card:#1e2328;
--bg:#121518}}
*{box-sizing:border-box}body{margin:0;font:16px/1.4 system-ui,sans-serif;color:var(--fg);
background:var(--bg)}main{max-width:40rem;margin:0 auto;padding:.75rem}
h1{font-size:1.25rem;margin:.25rem 0}h2{font-size:1rem;margin:1rem 0 .4rem;
color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.card,li{background:var(--card);border-radius:.6rem;padding:.7rem .8rem;margin:.5rem 0;
box-shadow:0 1px 2px #0002;list-style:none}ul{padding:0;margin:0}
.head{display:flex;justify-content:space-between;align-items:center;gap:.5rem}
.badge{border-radius:1rem;padding:.1rem .6rem;font-size:.9rem;font-weight:600;color:#fff;
white-space:nowrap}.badge.ok{background:var(--ok)}.badge.warn{background:var(--warn)}
.badge.bad{background:var(--bad)}.badge.muted{background:var(--muted)}
.muted{color:var(--muted)}.small{font-size:.85rem}.warnt{color:var(--warn)}
.badt{color:var(--bad);font-weight:600}
.bar{height:.45rem;background:#8883;border-radius:.3rem;margin:.2rem 0 .3rem;overflow:hidden}
.bar i{display:block;height:100%}.bar .ok{background:var(--ok)}.bar .warn{background:var(--warn)}
.bar .bad{background:var(--bad)}#stale{display:none;background:var(--bad);color:#fff;
padding:.4rem .8rem;border-radius:.4rem}body.stale #stale{display:block}
footer{color:var(--muted);font-size:.8rem;margin:1rem 0}
"""

# Swap in a fresh copy of <main> every few seconds; if the agent stops answering, say so
# instead of showing old numbers as if they were current.
_SCRIPT = f"""
setInterval(async () => {{
  try {{
    const r = await fetch(location.pathname, {{cache: "no-store"}});
    if (!r.ok) throw new Error(r.status);
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    document.querySelector("main").replaceWith(doc.querySelector("main"));
    document.body.classList.remove("stale");
  }} catch (e) {{ document.body.classList.add("stale"); }}
}}, {REFRESH_SECONDS * 1000});
"""

# A card's renderer by its "card" field (a UPS card has none).
_CARDS = {"ups": _ups_card, "genset": _genset_card, "inverter": _inverter_card}
_CENTRE_BADGES = {**_SOURCE_BADGES, "generator": ("On generator", "warn")}


def _power_card(power: dict[str, Any]) -> str:
    """The centre's source now, and the time on each source since the agent started."""
    source = power["source"]
    state = _badge(*_CENTRE_BADGES[source]) if source else _badge("Source unknown", "muted")
    spent = ", ".join(
        f"{name} {seconds / 3600:.1f} h" if seconds >= 3600 else f"{name} {seconds / 60:.0f} min"
        for name, seconds in power["seconds"].items()
        if seconds
    )
    lines = [f'<div class="head"><b>Centre</b>{state}</div>']
    if spent:
        lines.append(f'<div class="muted">since the agent started: {_e(spent)}</div>')
    return '<section class="card">' + "".join(lines) + "</section>"


def render_page(state: AgentState, now: float | None = None) -> str:
    doc = status_document(state, now)
    site = doc["site"]
    title = f"{site['name'] or site['id']}"
    parts = [
        "<main>",
        '<div id="stale">The agent is not answering: the figures below are old.</div>',
        f"<h1>{_e(title)}</h1>",
        f'<div class="muted">site {_e(site["id"])} · updated '
        f"{_e(time.strftime('%H:%M:%S', time.localtime(doc['generated'])))}</div>",
    ]
    if doc["links"]:
        parts.append("<h2>Internet links</h2>")
        parts += [_link_card(link) for link in doc["links"]]
    if doc["ups"] or doc["power"]:
        parts.append("<h2>Power</h2>")
        if doc["power"]:
            parts.append(_power_card(doc["power"]))
        parts += [_CARDS[card.get("card", "ups")](card) for card in doc["ups"]]
    parts.append("<h2>Devices</h2>")
    if doc["devices"]:
        parts.append("<ul>" + "".join(_device_row(d) for d in doc["devices"]) + "</ul>")
    else:
        parts.append('<p class="muted">No devices configured.</p>')
    parts.append(
        f'<footer>erozgar-agent {_e(doc["version"])} · <a href="/metrics">metrics</a> · '
        '<a href="/status.json">status.json</a></footer></main>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)} · erozgar-agent</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}<script>{_SCRIPT}</script></body></html>"
    )
