#!/usr/bin/env python3
"""Rebuilds the hand-made sample exports in sample_logs/ (run from the repository root).

Every number and address here is invented: callee numbers are random digits in Chinese mobile
shapes, foreign caller IDs come from fictional or unallocated ranges (+44 7700 900xxx, +1 646 555 01xx,
+44 11…), IPs from the synthetic plan in ip-country.csv. Times are local Asia/Shanghai unless marked.
"""
import random, os

random.seed(20260302)
HERE = os.path.dirname(os.path.abspath(__file__))
CDR = os.path.join(HERE, "cdr")
os.makedirs(CDR, exist_ok=True)


def mobile():
    return random.choice(["139", "158", "186", "150", "177"]) + "%08d" % random.randrange(10**8)


def w(name, text, encoding="utf-8", newline="\n"):
    with open(os.path.join(CDR, name) if not name.startswith("../") else os.path.join(HERE, name[3:]), "wb") as f:
        f.write(text.replace("\n", newline).encode(encoding))


def hms(sec):
    h, rem = divmod(sec, 3600)
    m, s = divmod(rem, 60)
    return "%02d:%02d:%02d" % (h, m, s)


# 1. generic CSV (UTF-8): mixed time shapes and number shapes, IPv4 and IPv6, one overseas desk
rows = ["call_id,operator_id,start_time,answer_time,end_time,duration,billsec,caller_id,callee,src_ip,disposition,campaign,cli_group"]
rows += [
    "G-0001,op-a,2026-03-02 08:01:00,2026-03-02 08:01:06,2026-03-02 08:04:10,190,184,+44 7700 900123,%s,36.112.4.20,ANSWERED,edu-refund-01,uk-pool" % mobile(),
    "G-0002,op-a,2026-03-02 08:04:40,,2026-03-02 08:05:10,30,0,00447700900456,+86 %s,36.112.4.20,NO ANSWER,edu-refund-01,uk-pool" % mobile(),
    "G-0003,op-a,2026/3/2 8:06,2026/3/2 8:06:09,2026/3/2 8:10:00,,,+1 646 555 0142,0086%s,240e:3a1:4c2::9,ANSWERED,edu-refund-01,us-pool" % mobile(),
    "G-0004,op-b,2026-03-02T00:12:00Z,2026-03-02T00:12:08Z,2026-03-02T00:15:30Z,210,202,+4411 2345 6789,86%s,[240e:3a1:77::2]:5060,ANSWERED,edu-refund-01,uk-pool" % mobile(),
    "G-0005,op-b,1772410800,1772410812,1772411000,200,188,+447700900123,%s,36.112.9.1,ANSWERED,edu-refund-01,uk-pool" % mobile(),
    "G-0006,bpo-ph-07,2026-03-02 09:00:00+08:00,2026-03-02 09:00:10+08:00,2026-03-02 09:06:40+08:00,400,390,+63 2 8123 4567,%s,112.198.33.7,ANSWERED,bpo-ph,ph" % mobile(),
    "G-0007,tm-12,2026-03-02 09:15:00,,2026-03-02 09:15:25,25,0,021-6123 4567,%s,101.86.2.2,BUSY,tm-insurance," % mobile(),
]
w("generic_utf8.csv", "\n".join(rows) + "\n")

# 2. domestic call-centre export: Chinese headers, GBK, CRLF
rows = ["通话ID,坐席工号,开始时间,接通时间,结束时间,总时长,通话时长,主叫号码,被叫号码,登录IP,呼叫结果,外呼任务"]
for i in range(6):
    start = 9 * 3600 + i * 400
    talk = [185, 0, 240, 0, 95, 300][i]
    ring = 12
    ans = "2026-03-02 %s" % hms(start + ring) if talk else ""
    rows.append("CN-%04d,工号%02d,2026-03-02 %s,%s,2026-03-02 %s,%d,%d,%s,%s,58.20.%d.%d,%s,机构客服-退费" % (
        i + 1, 7 + i % 2, hms(start), ans, hms(start + ring + talk), ring + talk, talk,
        random.choice(["+85512345678", "+447700900321"]), mobile(), i, 10 + i, "已接通" if talk else "未接通"))
w("callcentre_gbk.csv", "\n".join(rows) + "\n", encoding="gbk", newline="\r\n")

# 3. Asterisk cdr_csv Master.csv: no header, 18 columns, "" escapes in clid
rows = []
for i in range(5):
    start = 10 * 3600 + i * 300
    talk = [180, 0, 122, 61, 0][i]
    disp = "ANSWERED" if talk else ["NO ANSWER", "BUSY"][i % 2]
    callee = mobile()
    cli = ["+447700900777", "+16465550142"][i % 2]
    ans = "2026-03-02 %s" % hms(start + 7) if talk else ""
    rows.append('"","1001","%s","from-internal","""Agent 1001"" <%s>","SIP/1001-%08x","SIP/gw-out-%08x","Dial","SIP/gw-out/%s,60","2026-03-02 %s","%s","2026-03-02 %s",%d,%d,"%s","DOCUMENTATION","1772416800.%d",""' % (
        callee, cli, i * 2 + 1, i * 2 + 2, callee, hms(start), ans, hms(start + 7 + talk), 7 + talk, talk, disp, i + 1))
w("asterisk_Master.csv", "\n".join(rows) + "\n")

# 4. FreeSWITCH mod_cdr_csv default template: all quoted, inner quotes NOT escaped
rows = []
for i in range(4):
    start = 11 * 3600 + i * 360
    talk = [240, 0, 150, 90][i]
    name = ['Agent "Lucky" Seven', "Agent Seven", "Agent Seven", 'Agent "Lucky" Seven'][i]
    ans = "2026-03-02 %s" % hms(start + 5) if talk else ""
    cause = "NORMAL_CLEARING" if talk else "NO_ANSWER"
    rows.append('"%s","+447700900888","%s","default","2026-03-02 %s","%s","2026-03-02 %s","%d","%d","%s","5b1c%04d-2f3e-4a5b-9c8d-0e1f2a3b4c5d","","agent7"' % (
        name, mobile(), hms(start), ans, hms(start + 5 + talk), 5 + talk, talk, cause, i))
w("freeswitch_cdr.csv", "\n".join(rows) + "\n")

# 5. FreePBX CDR report: header, clid not escaped
hdr = "calldate,clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,duration,billsec,disposition,amaflags,accountcode,uniqueid,userfield,did,cnum,cnam,outbound_cnum,outbound_cnam,dst_cnam,linkedid,peeraccount,sequence"
rows = [hdr]
for i in range(4):
    talk = [200, 0, 95, 130][i]
    rows.append('2026-03-02 %s,"Agent 2001" <2001>,2001,%s,from-internal,PJSIP/2001-%08x,PJSIP/trunk-cn-%08x,Dial,PJSIP/%s@trunk-cn,%d,%d,%s,3,,1772420400.%d,,,2001,Agent 2001,+4411%08d,,,1772420400.%d,,%d' % (
        hms(12 * 3600 + i * 420), mobile(), i, i, "x", talk + 9, talk, "ANSWERED" if talk else "NO ANSWER", i, 12345678 + i, i, i))
w("freepbx_cdr.csv", "\n".join(rows) + "\n")

# 6. Grandstream UCM CDR download: header, CRLF, durations in seconds
hdr = "Account Code,Caller Number,Callee Number,Context,CallerID Number,Source Channel,Dest. Channel,Last app.,Last date,Start Time,Answer Time,End Time,Call Time,Talk Time,Disposition,AMA Flags,Unique ID,Log Userfield,Source Trunk Name,Destination Trunk Name"
rows = [hdr]
for i in range(4):
    start = 13 * 3600 + i * 500
    talk = [320, 45, 0, 210][i]
    ans = "2026-03-02 %s" % hms(start + 8) if talk else ""
    rows.append('3001,3001,%s,from-internal,"Desk" <+6328%07d>,PJSIP/3001-%08x,PJSIP/trunk1-%08x,Dial,PJSIP/trunk1,2026-03-02 %s,%s,2026-03-02 %s,%d,%d,%s,DOCUMENTATION,1772424000.%d,,,trunk1' % (
        mobile(), 1234567 + i, i, i, hms(start), ans, hms(start + 8 + talk), talk + 8, talk, "ANSWERED" if talk else "NO ANSWER", i))
w("grandstream_cdr.csv", "\n".join(rows) + "\n", newline="\r\n")

# 7. VICIdial vicidial_log dump with the dial log's outbound_cid joined in: tab-separated, CRLF
hdr = "uniqueid\tlead_id\tlist_id\tcampaign_id\tcall_date\tstart_epoch\tend_epoch\tlength_in_sec\tstatus\tphone_code\tphone_number\tuser\tcomments\tprocessed\tuser_group\tterm_reason\talt_dial\toutbound_cid"
rows = [hdr]
for i in range(5):
    start = 1772427600 + i * 330
    length = [260, 0, 190, 75, 0][i]
    rows.append("1772427600.%d\t%d\t101\tGAMESUP\t2026-03-02 %s\t%d\t%d\t%d\t%s\t86\t%s\tvdagent4\t\tY\tTEAM-B\tCALLER\tMAIN\t+16465550%03d" % (
        i, 5000 + i, hms((start - 1772409600 + 8 * 3600) % 86400), start, start + max(length, 25), length,
        ["SALE", "NA", "NI", "CALLBK", "B"][i], mobile(), 150 + i))
w("vicidial_log.tsv", "\n".join(rows) + "\n", newline="\r\n")

# 8-9. Multi-leg exports (the call model, docs/calls.md): an Asterisk 21-column export with a queue
# call through Local channels and an outbound call through a Local channel, and a Grandstream
# IVR -> queue -> agent call; the rows of tests/data/calls, where tests/calls.rs checks them
for src, dst in [("asterisk_queue_local.csv", "asterisk_queue_Master.csv"),
                 ("grandstream_ivr_queue.csv", "grandstream_ivr_queue.csv")]:
    w(dst, open(os.path.join(HERE, "..", "tests", "data", "calls", src), encoding="utf-8").read())

# 10-15. The switches of issue 23, as tests/data/formats writes them (tests/formats.rs checks them):
# a CUCM flat file with header and type row, 3CX CDR service output (BOM, no header) and a Call
# History export, Kamailio acc syslog lines, a mysqldump of asteriskcdrdb, a carrier's GBK 话单
import shutil
for src, dst in [("cucm_129_header_types.csv", "cucm_cdr.csv"), ("3cx_cdr_noheader.csv", "3cx_cdr.csv"),
                 ("3cx_call_history.csv", "3cx_call_history.csv"), ("kamailio_syslog.log", "kamailio_acc.log"),
                 ("asteriskcdrdb_mysql.sql", "asteriskcdrdb.sql"), ("carrier_gbk.csv", "carrier_gbk.csv")]:
    shutil.copyfile(os.path.join(HERE, "..", "tests", "data", "formats", src), os.path.join(CDR, dst))

# (cdr/generated_crews_2days.csv.gz and joins/generated_joins.csv come from
#   diversion-audit generate --operators 12 --days 2 --seed 7 --no-parquet --no-overlap --out DIR
#   with cdr.csv gzipped; see README.md here.)

# 8. chat-group join log (times in UTC, numbers in several shapes) and the synthetic IP plan
callees = []
for name in ["generic_utf8.csv", "asterisk_Master.csv", "freeswitch_cdr.csv"]:
    for line in open(os.path.join(CDR, name), encoding="utf-8"):
        for tok in line.replace('"', "").split(","):
            t = tok.replace("+86", "").replace("0086", "").replace(" ", "").replace("-", "")
            if t.isdigit() and len(t) == 13 and t.startswith("86"):
                t = t[2:]
            if t.isdigit() and len(t) == 11 and t.startswith("1"):
                callees.append(t)
rows = ["group_id,member,joined_at,platform,inviter"]
for i, c in enumerate(callees[:6]):
    shape = [c, "+86 %s-%s-%s" % (c[:3], c[3:7], c[7:]), "0086" + c][i % 3]
    rows.append("QQ-7781%02d,%s,2026-03-02T%02d:%02d:00Z,qq,leader-%d" % (i % 2, shape, 1 + i % 3, (7 * i) % 60, 1 + i % 2))
rows.append("QQ-778100,%s,2026-03-02T03:30:00Z,qq," % mobile())
os.makedirs(os.path.join(HERE, "joins"), exist_ok=True)
with open(os.path.join(HERE, "joins", "desk_joins.csv"), "w", encoding="utf-8") as f:
    f.write("\n".join(rows) + "\n")
with open(os.path.join(HERE, "ip-country.csv"), "w", encoding="utf-8") as f:
    f.write("network,country\n" + "".join("%s,%s\n" % p for p in [
        ("36.96.0.0/11", "CN"), ("58.16.0.0/13", "CN"), ("101.80.0.0/12", "CN"), ("240e::/20", "CN"),
        ("112.198.0.0/16", "PH"), ("2001:4450::/32", "PH"), ("175.136.0.0/13", "MY"),
        ("117.192.0.0/10", "IN"), ("86.128.0.0/10", "GB"), ("23.0.0.0/12", "US"), ("103.197.104.0/22", "KH")]))

# 10. VICIdial's real-time monitoring log beside vicidial_log.tsv: manager 6666 listens to vdagent4's
# first call and barges into its fourth (`mysql -B` export: tab-separated, NULL for nulls)
rows = ["manager_user\tmanager_server_ip\tmanager_phone\tmanager_ip\tagent_user\tagent_server_ip\tagent_status\tagent_session\tlead_id\tcampaign_id\tcaller_code\tmonitor_start_time\tmonitor_end_time\tmonitor_sec\tmonitor_type"]
for i, (lead, s, e, sec, typ) in enumerate([(5000, "13:01:30", "13:03:30", 120, "LISTEN"), (5003, "13:17:00", "13:17:50", 50, "BARGE")]):
    rows.append("6666\t10.10.10.15\t8600051\tNULL\tvdagent4\t10.10.10.15\tINCALL\t8600%03d\t%d\tGAMESUP\tM30213%02d00000%d\t2026-03-02 %s\t2026-03-02 %s\t%d\t%s" % (
        i + 1, lead, i, lead, s, e, sec, typ))
w("vicidial_rt_monitor_log.tsv", "\n".join(rows) + "\n")
