#!/usr/bin/env python3
"""Writes tests/data/ip-country.mmdb: a tiny MaxMind-format country database (GeoLite2-Country
layout: country.iso_code) over the synthetic IP plan. Needs `pip install mmdb-writer`."""
import os
from netaddr import IPSet
from mmdb_writer import MMDBWriter

plan = [("36.96.0.0/11", "CN"), ("240e::/20", "CN"), ("112.198.0.0/16", "PH"), ("2001:4450::/32", "PH"),
        ("86.128.0.0/10", "GB")]
w = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", languages=["en"],
               description={"en": "diversion-audit test fixture (synthetic)"}, ipv4_compatible=True)
for net, cc in plan:
    w.insert_network(IPSet([net]), {"country": {"iso_code": cc}, "registered_country": {"iso_code": cc}})
w.to_db_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ip-country.mmdb"))
