#!/usr/bin/env python3
"""Ansible inventory from the site inventory the central side routes alerts with.

    ansible-inventory -i inventory/sites.py --list      (EROZGAR_SITES_CSV: the CSV's path)

The CSV is deploy/fleet/sites.example.csv's format (site, site_name, region, admin_email),
checked by render_sites.py's own parser, plus an optional `address` column (how to reach the
box; default: the site id as a host name). Each site is a host named by its id in the group
`centres` and in `region_<region>`, with erozgar_site, erozgar_site_name and erozgar_region;
its devices and secrets are in inventory/host_vars/<site>.yml.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "fleet"))
from render_sites import parse  # noqa: E402

DEFAULT_CSV = HERE.parents[1] / "fleet" / "sites.example.csv"


def inventory(text: str) -> dict:
    rows, problems = parse(text)
    if problems:
        raise SystemExit("\n".join(problems))
    addresses = {
        row["site"]: (row.get("address") or "").strip() for row in csv.DictReader(text.splitlines())
    }
    hosts: dict[str, dict[str, str]] = {}
    groups: dict[str, dict] = {"centres": {"hosts": []}}
    for row in rows:
        site = row["site"]
        hosts[site] = {
            "erozgar_site": site,
            "erozgar_site_name": row["site_name"],
            "erozgar_region": row["region"],
        }
        if addresses.get(site):
            hosts[site]["ansible_host"] = addresses[site]
        groups["centres"]["hosts"].append(site)
        region = "region_" + re.sub(r"\W", "_", row["region"])
        groups.setdefault(region, {"hosts": []})["hosts"].append(site)
    return {**groups, "_meta": {"hostvars": hosts}}


def main(argv: list[str]) -> int:
    path = Path(os.environ.get("EROZGAR_SITES_CSV", DEFAULT_CSV))
    if len(argv) > 1 and argv[1] == "--host":
        print("{}")
        return 0
    print(json.dumps(inventory(path.read_text(encoding="utf-8")), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
