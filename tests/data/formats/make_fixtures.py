#!/usr/bin/env python3
"""Writes the fixtures of tests/formats.rs the way each system writes its rows (README.md here
says which documented behaviour each one follows). Run from this folder; the outputs are committed."""
import calendar, csv, io

T0 = calendar.timegm((2026, 3, 2, 8, 1, 0))  # 2026-03-02 08:01:00 UTC

# ---- Cisco CUCM CDR flat files --------------------------------------------------------------
CUCM = open("cucm_columns.list").read().split()
assert len(CUCM) == 133

def cucm_row(width, **v):
    row = [""] * width
    defaults = dict(cdrRecordType="1", globalCallID_callManagerId="1", origNodeId="1", destNodeId="1",
                    origSpan="0", destSpan="0", origIpAddr="0", destIpAddr="0", dateTimeConnect="0",
                    duration="0", origCause_value="0", destCause_value="16")
    for k, x in {**defaults, **v}.items():
        i = CUCM.index(k)
        if i < width:
            row[i] = x
    return row

def cucm_quote(row, width):
    # CUCM writes text columns quoted and numbers bare
    texts = {"callingPartyNumber", "originalCalledPartyNumber", "finalCalledPartyNumber", "pkid",
             "origDeviceName", "destDeviceName", "outpulsedCallingPartyNumber", "outpulsedCalledPartyNumber",
             "origIpv4v6Addr", "destIpv4v6Addr", "huntPilotDN", "callingPartyNumberPartition"}
    return ",".join(f'"{x}"' if CUCM[i] in texts else x for i, x in enumerate(row[:width]))

def cucm_calls(width, v6=False):
    out = dict(globalCallID_callId="7001", origLegCallIdentifier="16777301", destLegCallIdentifier="16777302",
               dateTimeOrigination=str(T0), dateTimeConnect=str(T0 + 5), dateTimeDisconnect=str(T0 + 125),
               duration="120", callingPartyNumber="3101", originalCalledPartyNumber="913812345678",
               finalCalledPartyNumber="913812345678", outpulsedCallingPartyNumber="+442079460000",
               outpulsedCalledPartyNumber="+8613812345678", origDeviceName="SEP001122334455",
               destDeviceName="SIPTrunk-PSTN", pkid="4c1a8b2e-0001-4000-8000-000000000001",
               origIpAddr="-1139627840")
    if v6:
        out.update(origIpAddr="0", origIpv4v6Addr="2001:db8::10")
    inbound = dict(globalCallID_callId="7002", origLegCallIdentifier="16777303", destLegCallIdentifier="16777304",
                   dateTimeOrigination=str(T0 + 600), dateTimeDisconnect=str(T0 + 630),
                   callingPartyNumber="13912345678", originalCalledPartyNumber="3102",
                   finalCalledPartyNumber="3102", origDeviceName="SIPTrunk-PSTN",
                   destDeviceName="SEP00AABBCCDDEE", pkid="4c1a8b2e-0002-4000-8000-000000000002",
                   origIpAddr="352430272")
    internal = dict(globalCallID_callId="7003", origLegCallIdentifier="16777305", destLegCallIdentifier="16777306",
                    dateTimeOrigination=str(T0 + 900), dateTimeConnect=str(T0 + 903),
                    dateTimeDisconnect=str(T0 + 963), duration="60", callingPartyNumber="3101",
                    originalCalledPartyNumber="3102", finalCalledPartyNumber="3102",
                    origDeviceName="SEP001122334455", destDeviceName="SEP00AABBCCDDEE",
                    pkid="4c1a8b2e-0003-4000-8000-000000000003", origIpAddr="-1139627840")
    return [cucm_row(width, **c) for c in (out, inbound, internal)]

def cucm_file(name, width, header, types, v6=False, cmr=False):
    lines = []
    if header:
        lines.append(",".join(f'"{c}"' for c in CUCM[:width]))
    if types:
        def t(c):
            if c == "pkid":
                return "UNIQUEIDENTIFIER"
            if "Number" in c or "DeviceName" in c or "Partition" in c or "v4v6" in c or c.endswith("_uri"):
                return "VARCHAR(50)"
            return "INTEGER"
        lines.append(",".join(t(c) for c in CUCM[:width]))
    rows = cucm_calls(width, v6)
    # an empty value written as a backslash and a space
    rows[0][CUCM.index("callingPartyUnicodeLoginUserID")] = "\\ "
    lines += [cucm_quote(r, width) for r in rows]
    if cmr:
        # a CMR (call-management, voice quality) record of the first call
        lines.append('2,1,7001,16777301,"",' + str(T0 + 125) + ',1200,192000,0,0,0,0,0,"SEP001122334455","","","","","","",""')
    open(name, "w", newline="").write("\r\n".join(lines) + "\r\n")

open("cucm_columns.list")  # the column list: the documented field order of release 11.x, then 12.5's four
cucm_file("cucm_129_header_types.csv", 129, True, True)
cucm_file("cucm_123_header.csv", 123, True, False)
cucm_file("cucm_133_noheader_v6.csv", 133, False, False, v6=True, cmr=True)

# ---- 3CX ---------------------------------------------------------------------------------------
TCX = ("historyid callid duration time-start time-answered time-end reason-terminated from-no to-no from-dn "
       "to-dn dial-no reason-changed final-number final-dn bill-code bill-rate bill-cost bill-name chain "
       "from-type to-type final-type from-dispname to-dispname final-dispname missed-queue-calls").split()
def tcx(**v):
    return [v.get(c.replace("-", "_"), "") for c in TCX]
rows = [
    tcx(historyid="51", callid="00000190A1B2C3D4_1", duration="00:02:00", time_start="2026/03/02 08:01:00",
        time_answered="2026/03/02 08:01:05", time_end="2026/03/02 08:03:05", reason_terminated="TerminatedBySrc",
        from_no="Ext.4101", to_no="+639171234567", from_dn="4101", to_dn="10000", dial_no="00639171234567",
        final_number="+639171234567", final_dn="10000", chain="Ext.4101;10000;+639171234567",
        from_type="Extension", to_type="Line", final_type="Line", from_dispname="Zhang Wei", to_dispname="PH Trunk",
        final_dispname="PH Trunk"),
    tcx(historyid="52", callid="00000190A1B2C3D4_2", duration="00:01:00", time_start="2026/03/02 08:10:00",
        time_answered="2026/03/02 08:10:20", time_end="2026/03/02 08:11:20", reason_terminated="TerminatedByDst",
        from_no="+639170000001", to_no="800", from_dn="10000", to_dn="800", dial_no="800",
        reason_changed="ReplacedDst", final_number="Ext.4102", final_dn="4102", chain="10000;800;Ext.4102",
        from_type="Line", to_type="Queue", final_type="Extension", to_dispname="Sales", final_dispname="Li Na"),
    tcx(historyid="53", callid="00000190A1B2C3D4_3", duration="00:00:00", time_start="2026/03/02 08:20:00",
        time_answered="", time_end="2026/03/02 08:20:30", reason_terminated="TerminatedBySrc",
        from_no="Ext.4101", to_no="Ext.4102", from_dn="4101", to_dn="4102", dial_no="4102",
        final_number="Ext.4102", final_dn="4102", chain="Ext.4101;Ext.4102", from_type="Extension",
        to_type="Extension", final_type="Extension"),
]
b = io.StringIO()
csv.writer(b, lineterminator="\r\n").writerows(rows)
# the CDR service writes no header; a UTF-8 BOM sits on the first data field
open("3cx_cdr_noheader.csv", "w", encoding="utf-8-sig", newline="").write(b.getvalue())
b = io.StringIO()
csv.writer(b, lineterminator="\r\n").writerows([[c.replace("-", "_") for c in TCX]] + rows)
open("3cx_cdr_header.csv", "w", newline="").write(b.getvalue())
hist = [
    ["Call Time", "Caller ID", "Destination", "Status", "Ringing", "Talking", "Cost", "Reason"],
    ["2026/03/02 08:01:00", "Ext.4201 Zhang Wei", "+639171234567", "Answered", "00:00:05", "00:02:00", "0.00", "Ended by Ext.4201 Zhang Wei"],
    ["2026/03/02 08:10:00", "+639170000001", "Ext.4202 Li Na", "Answered", "00:00:20", "00:01:00", "0.00", "Ended by +639170000001"],
    ["2026/03/02 08:20:00", "Ext.4201 Zhang Wei", "+639171230000", "Unanswered", "00:00:30", "00:00:00", "0.00", "Not answered"],
    ["Totals", "", "", "", "00:00:55", "00:03:00", "0.00", ""],
]
b = io.StringIO()
csv.writer(b, lineterminator="\r\n").writerows(hist)
open("3cx_call_history.csv", "w", encoding="utf-8-sig", newline="").write(b.getvalue())

# ---- Kamailio acc ------------------------------------------------------------------------------
ACC = ["method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time", "src_user", "src_domain",
       "src_ip", "dst_ouser", "dst_user", "dst_domain"]
acc = [
    ["REGISTER", "r1", "", "reg-1@10.0.0.5", "200", "OK", T0 - 60, "op1001", "farm.example", "203.0.113.9", "op1001", "op1001", "farm.example"],
    ["INVITE", "a1", "", "call-1@10.0.0.5", "407", "Proxy Authentication Required", T0, "op1001", "farm.example", "203.0.113.9", "13812345678", "13812345678", "farm.example"],
    ["INVITE", "a1", "b1", "call-1@10.0.0.5", "200", "OK", T0 + 5, "op1001", "farm.example", "203.0.113.9", "13812345678", "13812345678", "farm.example"],
    ["MESSAGE", "m1", "", "msg-1@10.0.0.5", "202", "Accepted", T0 + 30, "op1001", "farm.example", "203.0.113.9", "op1002", "op1002", "farm.example"],
    ["BYE", "a1", "b1", "call-1@10.0.0.5", "200", "OK", T0 + 125, "op1001", "farm.example", "203.0.113.9", "13812345678", "13812345678", "farm.example"],
    ["INVITE", "a2", "", "call-2@10.0.0.5", "486", "Busy Here", T0 + 200, "op1001", "farm.example", "203.0.113.9", "13912345678", "13912345678", "farm.example"],
    ["OPTIONS", "o1", "", "opt-1@10.0.0.5", "200", "OK", T0 + 250, "", "farm.example", "198.51.100.7", "", "", "farm.example"],
]
def ts(t):
    import time
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
b = io.StringIO()
w = csv.writer(b, delimiter="\t", lineterminator="\n")
w.writerow(ACC)
for r in acc:
    w.writerow([ts(x) if i == 6 else x for i, x in enumerate(r)])
open("kamailio_acc.tsv", "w", newline="").write(b.getvalue())
lines = []
for r in acc:
    d = dict(zip(ACC, r))
    state = "transaction answered" if d["sip_code"].startswith("2") else "transaction failed"
    kv = (f"timestamp={d['time']};method={d['method']};from_tag={d['from_tag']};to_tag={d['to_tag']};"
          f"call_id={d['callid']};code={d['sip_code']};reason={d['sip_reason']};src_user={d['src_user']};"
          f"src_domain={d['src_domain']};src_ip={d['src_ip']};dst_ouser={d['dst_ouser']};"
          f"dst_user={d['dst_user']};dst_domain={d['dst_domain']}")
    lines.append(f"Mar  2 08:01:{len(lines):02d} sip01 /usr/sbin/kamailio[2114]: NOTICE: acc [acc.c:281]: ACC: {state}: {kv}")
# the proxy's other messages (and other daemons') share the log
lines.insert(0, "Mar  2 07:59:58 sip01 /usr/sbin/kamailio[2110]: INFO: <core> [main.c:2853]: main(): listening on udp: 10.0.0.5:5060")
lines.insert(3, "Mar  2 08:01:02 sip01 rtpengine[998]: INFO: [call-1@10.0.0.5]: New call")
open("kamailio_syslog.log", "w").write("\n".join(lines) + "\n")

# OpenSIPS acc in CDR mode (do_accounting("db", "cdr")): one INVITE row a call with its duration,
# setuptime and created, the parties as URIs (the extras of that setup); a failed call keeps its row
ops = [["method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason", "time", "cdr_id", "duration", "setuptime", "created", "src_uri", "dst_uri", "caller_domain", "callee_domain"],
       ["INVITE", "a1", "b1", "c1@10.0.0.5", "200", "OK", ts(T0 + 5), "1", "120", "5", ts(T0), "sip:op2001@farm.example", "sip:13812345678@gw.example", "farm.example", "gw.example"],
       ["INVITE", "a2", "", "c2@10.0.0.5", "486", "Busy Here", ts(T0 + 200), "2", "0", "0", ts(T0 + 195), "sip:op2001@farm.example", "sip:13912345678@gw.example", "farm.example", "gw.example"]]
b = io.StringIO()
csv.writer(b, lineterminator="\n").writerows(ops)
open("opensips_acc_cdr.csv", "w", newline="").write(b.getvalue())
# Kamailio acc's dialog CDRs (cdr_enable, the `cdrs` table): one row a call from the answer
cdrs = [["cdr_id", "src_username", "src_domain", "dst_username", "dst_domain", "dst_ousername", "call_start_time", "duration", "sip_call_id", "sip_from_tag", "sip_to_tag", "src_ip", "cost", "rated", "created"],
        ["1", "op3001", "farm.example", "13812345678", "gw.example", "13812345678", ts(T0 + 5), "120", "d1@10.0.0.5", "a1", "b1", "203.0.113.9", "0", "0", ts(T0 + 125)],
        ["2", "op3001", "farm.example", "13912345678", "gw.example", "13912345678", ts(T0 + 600), "45", "d2@10.0.0.5", "a2", "b2", "203.0.113.9", "0", "0", ts(T0 + 645)]]
b = io.StringIO()
csv.writer(b, lineterminator="\n").writerows(cdrs)
open("kamailio_cdrs.csv", "w", newline="").write(b.getvalue())

# ---- SQL dumps ---------------------------------------------------------------------------------
FPBX = ["calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata", "duration",
        "billsec", "disposition", "amaflags", "accountcode", "uniqueid", "userfield", "did", "recordingfile",
        "cnum", "cnam", "outbound_cnum", "outbound_cnam", "dst_cnam", "linkedid", "peeraccount", "sequence"]
cdr = [
    ["2026-03-02 08:01:00", '"Zhang" <5101>', "5101", "8613812345678", "from-internal", "PJSIP/5101-00000001",
     "PJSIP/trunk-ph-00000002", "Dial", "PJSIP/8613812345678@trunk-ph,300,Tt", 125, 120, "ANSWERED", 3, "",
     "1772438460.1", "", "", "out-8613812345678-5101-20260302-080100-1772438460.1.wav", "5101", "Zhang",
     "+442079460000", "", "", "1772438460.1", "", 1],
    ["2026-03-02 08:10:00", '"O\'Brien" <+639170000001>', "+639170000001", "5102", "from-trunk",
     "PJSIP/trunk-ph-00000003", "PJSIP/5102-00000004", "Dial", "PJSIP/5102,20,Tt", 80, 60, "ANSWERED", 3, "",
     "1772439000.3", "", "6001", "", "+639170000001", "O'Brien", "", "", "", "1772439000.3", "", 3],
    ["2026-03-02 08:20:00", '"Zhang" <5101>', "5101", "8613912345678", "from-internal", "PJSIP/5101-00000005",
     "PJSIP/trunk-ph-00000006", "Dial", "PJSIP/8613912345678@trunk-ph,300,Tt", 30, 0, "NO ANSWER", 3, "",
     "1772439600.5", "", "", None, "5101", "Zhang", "+442079460000", "", "", "1772439600.5", "", 5],
]
def my(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'").replace('"', '\\"') + "'"
sql = ["-- MySQL dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)", "--",
       "-- Host: localhost    Database: asteriskcdrdb", "-- ------------------------------------------------------",
       "/*!40101 SET NAMES utf8mb4 */;", "", "DROP TABLE IF EXISTS `cdr`;", "CREATE TABLE `cdr` ("]
sql += [f"  `{c}` varchar(255) NOT NULL DEFAULT ''," for c in FPBX]
sql += ["  KEY `calldate` (`calldate`)", ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;", "",
        "LOCK TABLES `cdr` WRITE;", "/*!40000 ALTER TABLE `cdr` DISABLE KEYS */;",
        "INSERT INTO `cdr` VALUES " + ",".join("(" + ",".join(my(v) for v in r) + ")" for r in cdr) + ";",
        "/*!40000 ALTER TABLE `cdr` ENABLE KEYS */;", "UNLOCK TABLES;", "",
        "DROP TABLE IF EXISTS `users`;", "CREATE TABLE `users` (", "  `extension` varchar(20) NOT NULL,",
        "  `name` varchar(50) DEFAULT NULL,", "  `voicemail` varchar(50) DEFAULT NULL,", "  PRIMARY KEY (`extension`)",
        ");", "INSERT INTO `users` VALUES ('5101','Zhang','default'),('5102','O\\'Brien',NULL);",
        "-- Dump completed on 2026-03-02 23:59:59", ""]
open("asteriskcdrdb_mysql.sql", "w").write("\n".join(sql))
def pgcopy(v):
    if v is None:
        return "\\N"
    return str(v).replace("\\", "\\\\").replace("\t", "\\t")
pg = ["--", "-- PostgreSQL database dump", "--", "", "SET statement_timeout = 0;", "",
      "CREATE TABLE public.cdr (", ",\n".join(f"    {c} character varying(255)" for c in FPBX), ");", "",
      f"COPY public.cdr ({', '.join(FPBX)}) FROM stdin;"]
pg += ["\t".join(pgcopy(v) for v in r) for r in cdr[:2]]
pg += ["\\.", "",
       f"INSERT INTO public.cdr ({', '.join(FPBX)}) VALUES (" + ", ".join(
           "NULL" if v is None else (str(v) if isinstance(v, int) else "'" + v.replace("'", "''") + "'") for v in cdr[2]) + ");",
       "", "-- PostgreSQL database dump complete", ""]
open("cdr_postgres.sql", "w").write("\n".join(pg))
# the cdr table saved without its header
b = io.StringIO()
csv.writer(b, lineterminator="\n").writerows([["" if v is None else v for v in r] for r in cdr])
open("freepbx_table_noheader.csv", "w", newline="").write(b.getvalue())

# ---- a SIP proxy's transaction CSV: date and time apart, a method column ---------------------------
sip = [["Date", "Time", "Method", "Caller Number", "Callee Number", "Agent", "Duration", "Status"],
       ["2026-03-02", "08:00:00", "REGISTER", "", "", "op1001", "", "200"],
       ["2026-03-02", "08:01:00", "CALL", "+442079460000", "13812345678", "op1001", "120", "ANSWERED"],
       ["2026-03-02", "08:05:00", "MESSAGE", "op1001", "op1002", "op1001", "", "202"],
       ["2026-03-02", "08:06:00", "CALL", "+442079460000", "13912345678", "op1001", "0", "NO ANSWER"]]
b = io.StringIO()
csv.writer(b, lineterminator="\n").writerows(sip)
open("sip_transactions.csv", "w", newline="").write(b.getvalue())

# ---- a carrier's 话单 (GBK): the subscriber's own calls ------------------------------------------
car = [["本机号码", "对方号码", "呼叫类型", "开始时间", "结束时间", "通话时长", "通话类型", "通话地", "归属地", "LAC", "CI", "IMEI", "IMSI", "第三方号码"],
       ["13800000001", "+442079460000", "被叫", "2026-03-02 16:01:00", "2026-03-02 16:03:00", "120", "国际来话", "上海", "上海", "6201", "31522", "867530012345678", "460001234567890", ""],
       ["13800000001", "00442079460001", "被叫", "2026-03-02 16:30:00", "2026-03-02 16:30:40", "40", "国际来话", "上海", "上海", "6201", "31522", "867530012345678", "460001234567890", ""],
       ["13800000001", "13912345678", "主叫", "2026-03-02 17:00:00", "2026-03-02 17:05:00", "300", "本地", "上海", "上海", "6201", "31523", "867530012345678", "460001234567890", ""],
       ["13800000001", "+639171234567", "呼转", "2026-03-02 18:00:00", "2026-03-02 18:00:30", "30", "国际来话", "上海", "上海", "6201", "31522", "867530012345678", "460001234567890", "13700000002"]]
b = io.StringIO()
csv.writer(b, lineterminator="\r\n").writerows(car)
open("carrier_gbk.csv", "wb").write(b.getvalue().encode("gbk"))
