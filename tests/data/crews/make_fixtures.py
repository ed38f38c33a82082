#!/usr/bin/env python3
"""Rebuilds the crew fixtures. Pairs named `hit-<kind>-a` / `hit-<kind>-b` must be linked by that
kind of evidence (and be one crew when the kinds' weights reach 1.0); `ok-<kind>-*` pairs are near
misses that must not be linked by it. Times are local (Asia/Shanghai); joins are in UTC."""
import zlib
from datetime import datetime, timedelta

H = "operator_id,start_time,answer_time,end_time,duration,billsec,caller_id,callee,src_ip,disposition,campaign"


def num(*key):
    return "139%08d" % (zlib.crc32(repr(key).encode()) % 10**8)


def row(op, t, talk=60, cli="021 6123 4567", callee=None, ip="", camp=""):
    a = t + timedelta(seconds=10)
    e = a + timedelta(seconds=talk)
    f = lambda x: x.strftime("%Y-%m-%d %H:%M:%S")
    return f"{op},{f(t)},{f(a)},{f(e)},{10+talk},{talk},{cli},{callee},{ip},ANSWERED,{camp}"


rows, joins = [H], ["group_id,member,joined_at"]
day = lambda d, h, m=0: datetime(2026, 3, 2 + d, h, m)
# shared-cli: two numbers of one pool on one day; near miss: one number, one day
for i, cli in enumerate(["+447700900111", "+447700900222"]):
    rows.append(row("hit-cli-a", day(0, 9, i), cli=cli, callee=num("c", "a", i)))
    rows.append(row("hit-cli-b", day(0, 14, i), cli=cli, callee=num("c", "b", i)))
rows.append(row("ok-cli-c", day(0, 9), cli="+447700900333", callee=num("c", "c")))
rows.append(row("ok-cli-d", day(0, 15), cli="+447700900333", callee=num("c", "d")))
# lead-list: 40 of 100 callees in common; near miss: 2 in common out of a thousand each
for i in range(100):
    rows.append(row("hit-list-a", day(0, 8) + timedelta(minutes=2 * i), callee=num("L", i)))
    k = i if i < 40 else 1000 + i
    rows.append(row("hit-list-b", day(0, 8) + timedelta(minutes=2 * i), callee=num("L", k)))
for i in range(1000):
    rows.append(row("ok-list-c", day(1, 8) + timedelta(seconds=40 * i), callee=num("M", i)))
    k = i if i < 2 else 5000 + i
    rows.append(row("ok-list-d", day(1, 8) + timedelta(seconds=40 * i), callee=num("M", k)))
# same-ip + shift-sync: one office /24, shifts 5 min apart on three days (0.5 + 0.5: a crew);
# near miss: one office /24, shifts 20 min apart (same-ip alone: a link, no crew)
for d in range(3):
    rows.append(row("hit-office-a", day(d, 8, 0), ip="36.112.5.10", callee=num("o", "a", d)))
    rows.append(row("hit-office-b", day(d, 8, 5), ip="36.112.5.77", callee=num("o", "b", d)))
    rows.append(row("ok-sync20-a", day(d, 10, 0), ip="58.20.7.10", callee=num("s", "a", d)))
    rows.append(row("ok-sync20-b", day(d, 10, 20), ip="58.20.7.11", callee=num("s", "b", d)))
# campaign + shift-sync: the same outbound task on three days, starting together
for d in range(3):
    rows.append(row("hit-camp-a", day(d, 13, 0), camp="edu-refund-07", callee=num("k", "a", d)))
    rows.append(row("hit-camp-b", day(d, 13, 4), camp="edu-refund-07", callee=num("k", "b", d)))
# shared-group: both fed G1 with two conversions; near miss: one coincidental join each into G2
for op, group, n in [("hit-group-a", "G1", 2), ("hit-group-b", "G1", 2), ("ok-group-c", "G2", 1), ("ok-group-d", "G2", 1)]:
    for i in range(n):
        callee = num("g", op, i)
        t = day(2, 16, 10 * i + (5 if op.endswith("b") or op.endswith("d") else 0))
        rows.append(row(op, t, callee=callee))
        joined = t + timedelta(minutes=20) - timedelta(hours=8)
        joins.append(f"{group},{callee},{joined.strftime('%Y-%m-%dT%H:%M:%SZ')}")
open("crews.csv", "w").write("\n".join(rows) + "\n")
open("crews_joins.csv", "w").write("\n".join(joins) + "\n")

# monitoring as Asterisk writes it: a leader's ChanSpy and ExtenSpy legs, a seat's brief internal
# calls into three operators' extensions, and the operators' own outbound calls
def ast(src, dst, ch, dch, app, data, t, talk, uid):
    a = t + timedelta(seconds=1)
    e = a + timedelta(seconds=talk)
    f = lambda x: x.strftime("%Y-%m-%d %H:%M:%S")
    return (f'"","{src}","{dst}","from-internal","""{src}"" <{src}>","{ch}","{dch}","{app}","{data}",'
            f'"{f(t)}","{f(a) if talk else ""}","{f(e)}",{1+talk},{talk},"ANSWERED","DOCUMENTATION","{uid}","","","{uid}",1')

out, n = [], 0
def uid():
    global n
    n += 1
    return "1772000000.%d" % n
for i, ext in enumerate(["2001", "2002", "2003", "2004"]):
    for k in range(3):
        t = day(0, 9 + k, i)
        out.append(ast(ext, num("v", ext, k), f"SIP/{ext}-0000{n:04x}", f"SIP/trunk-cn-{n:04x}", "Dial",
                       f"SIP/trunk-cn/{num('v', ext, k)},60", t, 120, uid()))
out.append(ast("9001", "*2222001", "SIP/9001-00001001", "", "ChanSpy", "SIP/2001,qE", day(0, 9, 30), 300, uid()))
out.append(ast("9001", "*2222002", "SIP/9001-00001002", "", "ChanSpy", "PJSIP/2002,q", day(0, 10, 30), 240, uid()))
out.append(ast("9001", "556", "SIP/9001-00001003", "", "ExtenSpy", "2003@from-internal,q", day(0, 11, 30), 200, uid()))
out.append(ast("9001", "555", "SIP/9001-00001004", "", "ChanSpy", ",q", day(0, 12, 30), 100, uid()))
for i, ext in enumerate(["2002", "2003", "2004"]):
    out.append(ast("9002", ext, "SIP/9002-00002000", f"SIP/{ext}-00002{i:03x}", "Dial", f"SIP/{ext},20",
                   day(0, 14, 10 * i), 45, uid()))
out.append(ast("2001", "2004", "SIP/2001-00003000", "SIP/2004-00003001", "Dial", "SIP/2004,20", day(0, 15), 600, uid()))
# near miss: 2003 rings three colleagues briefly, nobody answers (no talk: nothing listened to)
for i, ext in enumerate(["2001", "2002", "2004"]):
    out.append(ast("2003", ext, "SIP/2003-00004000", f"SIP/{ext}-00004{i:03x}", "Dial", f"SIP/{ext},20",
                   day(0, 16, 10 * i), 0, uid()).replace('"ANSWERED"', '"NO ANSWER"'))
open("monitoring_asterisk.csv", "w").write("\n".join(out) + "\n")

# VICIdial: the outbound log of four agents and the real-time monitoring log of manager 6666, as
# `mysql -B` writes them (tab-separated, a header, NULL for nulls); vicidial_rt_monitor_log's
# columns as VICIdial's schema has them (manager listens, barges, whispers; one session never
# connected: no end, no seconds)
rows = ["uniqueid\tlead_id\tlist_id\tcampaign_id\tcall_date\tstart_epoch\tend_epoch\tlength_in_sec\tstatus\tphone_code\tphone_number\tuser\tcomments\tprocessed\tuser_group\tterm_reason\talt_dial"]
epoch0, lead = 1772413200, 7000  # 2026-03-02 09:00:00 +08:00
for a, agent in enumerate(["vdagent1", "vdagent2", "vdagent3", "vdagent4"]):
    for k in range(6):
        off = a * 37 + k * 600
        t = datetime(2026, 3, 2, 9) + timedelta(seconds=off)
        length = 180 + 20 * k
        rows.append(f"{epoch0 + off}.{a}{k}\t{lead}\t101\tGAMESUP\t{t:%Y-%m-%d %H:%M:%S}\t{epoch0 + off}\t{epoch0 + off + length}\t{length}\tSALE\t86\t1589652{lead:04d}\t{agent}\tNULL\tY\tTEAM-A\tCALLER\tMAIN")
        lead += 1
open("vicidial_log.tsv", "w").write("\n".join(rows) + "\n")
mon = ["manager_user\tmanager_server_ip\tmanager_phone\tmanager_ip\tagent_user\tagent_server_ip\tagent_status\tagent_session\tlead_id\tcampaign_id\tcaller_code\tmonitor_start_time\tmonitor_end_time\tmonitor_sec\tmonitor_type"]
sessions = [
    ("vdagent1", "09:03:10", "09:04:45", 95, "LISTEN", "INCALL"),
    ("vdagent2", "09:13:40", "09:14:20", 40, "BARGE", "INCALL"),
    ("vdagent3", "09:24:05", "09:26:05", 120, "WHISPER", "INCALL"),
    ("vdagent1", "10:01:00", None, 0, "LISTEN", "PAUSED"),
]
for i, (agent, s, e, sec, typ, st) in enumerate(sessions):
    end = f"2026-03-02 {e}" if e else "NULL"
    mon.append(f"6666\t10.10.10.15\t8600051\t192.168.1.50\t{agent}\t10.10.10.15\t{st}\t860000{i+1}\t{7000+i}\tGAMESUP\tM3020903{i}0000{7000+i}\t2026-03-02 {s}\t{end}\t{sec}\t{typ}")
open("vicidial_rt_monitor_log.tsv", "w").write("\n".join(mon) + "\n")

# the same two tables as mysqldump writes them (CREATE TABLE with VICIdial's column types, one
# multi-row INSERT each; numbers unquoted)
TYPES = {
    "vicidial_log": "uniqueid varchar(20) NOT NULL|lead_id int(9) unsigned NOT NULL|list_id bigint(14) unsigned DEFAULT NULL|"
    "campaign_id varchar(8) DEFAULT NULL|call_date datetime DEFAULT NULL|start_epoch int(10) unsigned DEFAULT NULL|"
    "end_epoch int(10) unsigned DEFAULT NULL|length_in_sec int(10) DEFAULT NULL|status varchar(6) DEFAULT NULL|"
    "phone_code varchar(10) DEFAULT NULL|phone_number varchar(18) DEFAULT NULL|user varchar(20) DEFAULT NULL|"
    "comments varchar(255) DEFAULT NULL|processed enum('Y','N') DEFAULT NULL|user_group varchar(20) DEFAULT NULL|"
    "term_reason enum('CALLER','AGENT','QUEUETIMEOUT','ABANDON','AFTERHOURS','NONE','SYSTEM') DEFAULT 'NONE'|"
    "alt_dial varchar(6) DEFAULT 'NONE'",
    "vicidial_rt_monitor_log": "manager_user varchar(20) NOT NULL|manager_server_ip varchar(15) NOT NULL|"
    "manager_phone varchar(20) NOT NULL|manager_ip varchar(15) DEFAULT NULL|agent_user varchar(20) DEFAULT NULL|"
    "agent_server_ip varchar(15) DEFAULT NULL|agent_status varchar(10) DEFAULT NULL|agent_session varchar(10) DEFAULT NULL|"
    "lead_id int(9) unsigned DEFAULT NULL|campaign_id varchar(8) DEFAULT NULL|caller_code varchar(20) DEFAULT NULL|"
    "monitor_start_time datetime DEFAULT NULL|monitor_end_time datetime DEFAULT NULL|"
    "monitor_sec int(9) unsigned DEFAULT '0'|monitor_type enum('LISTEN','BARGE','HIJACK','WHISPER') DEFAULT 'LISTEN'",
}
def dump_table(name, lines):
    types = [t.split(" ", 1) for t in TYPES[name].split("|")]
    assert [t[0] for t in types] == lines[0].split("\t")
    numeric = [t[1].startswith(("int", "bigint")) for t in types]
    q = lambda v, n: "NULL" if v == "NULL" else (v if n else "'" + v.replace("'", "\\'") + "'")
    vals = ",".join("(" + ",".join(q(v, n) for v, n in zip(l.split("\t"), numeric)) + ")" for l in lines[1:])
    create = ",\n".join(f"  `{c}` {t}" for c, t in types)
    return (f"DROP TABLE IF EXISTS `{name}`;\nCREATE TABLE `{name}` (\n{create}\n) ENGINE=MyISAM;\n"
            f"LOCK TABLES `{name}` WRITE;\nINSERT INTO `{name}` VALUES {vals};\nUNLOCK TABLES;\n")
open("vicidial_dump.sql", "w").write(
    "-- MySQL dump 10.19  Distrib 10.5.22-MariaDB, for Linux (x86_64)\n--\n-- Host: localhost    Database: asterisk\n\n"
    + dump_table("vicidial_log", rows) + "\n" + dump_table("vicidial_rt_monitor_log", mon))
