--
-- PostgreSQL database dump
--

SET statement_timeout = 0;

CREATE TABLE public.cdr (
    calldate character varying(255),
    clid character varying(255),
    src character varying(255),
    dst character varying(255),
    dcontext character varying(255),
    channel character varying(255),
    dstchannel character varying(255),
    lastapp character varying(255),
    lastdata character varying(255),
    duration character varying(255),
    billsec character varying(255),
    disposition character varying(255),
    amaflags character varying(255),
    accountcode character varying(255),
    uniqueid character varying(255),
    userfield character varying(255),
    did character varying(255),
    recordingfile character varying(255),
    cnum character varying(255),
    cnam character varying(255),
    outbound_cnum character varying(255),
    outbound_cnam character varying(255),
    dst_cnam character varying(255),
    linkedid character varying(255),
    peeraccount character varying(255),
    sequence character varying(255)
);

COPY public.cdr (calldate, clid, src, dst, dcontext, channel, dstchannel, lastapp, lastdata, duration, billsec, disposition, amaflags, accountcode, uniqueid, userfield, did, recordingfile, cnum, cnam, outbound_cnum, outbound_cnam, dst_cnam, linkedid, peeraccount, sequence) FROM stdin;
2026-03-02 08:01:00	"Zhang" <5101>	5101	8613812345678	from-internal	PJSIP/5101-00000001	PJSIP/trunk-ph-00000002	Dial	PJSIP/8613812345678@trunk-ph,300,Tt	125	120	ANSWERED	3		1772438460.1			out-8613812345678-5101-20260302-080100-1772438460.1.wav	5101	Zhang	+442079460000			1772438460.1		1
2026-03-02 08:10:00	"O'Brien" <+639170000001>	+639170000001	5102	from-trunk	PJSIP/trunk-ph-00000003	PJSIP/5102-00000004	Dial	PJSIP/5102,20,Tt	80	60	ANSWERED	3		1772439000.3		6001		+639170000001	O'Brien				1772439000.3		3
\.

INSERT INTO public.cdr (calldate, clid, src, dst, dcontext, channel, dstchannel, lastapp, lastdata, duration, billsec, disposition, amaflags, accountcode, uniqueid, userfield, did, recordingfile, cnum, cnam, outbound_cnum, outbound_cnam, dst_cnam, linkedid, peeraccount, sequence) VALUES ('2026-03-02 08:20:00', '"Zhang" <5101>', '5101', '8613912345678', 'from-internal', 'PJSIP/5101-00000005', 'PJSIP/trunk-ph-00000006', 'Dial', 'PJSIP/8613912345678@trunk-ph,300,Tt', 30, 0, 'NO ANSWER', 3, '', '1772439600.5', '', '', NULL, '5101', 'Zhang', '+442079460000', '', '', '1772439600.5', '', 5);

-- PostgreSQL database dump complete
