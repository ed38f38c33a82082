-- MySQL dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: asteriskcdrdb
-- ------------------------------------------------------
/*!40101 SET NAMES utf8mb4 */;

DROP TABLE IF EXISTS `cdr`;
CREATE TABLE `cdr` (
  `calldate` varchar(255) NOT NULL DEFAULT '',
  `clid` varchar(255) NOT NULL DEFAULT '',
  `src` varchar(255) NOT NULL DEFAULT '',
  `dst` varchar(255) NOT NULL DEFAULT '',
  `dcontext` varchar(255) NOT NULL DEFAULT '',
  `channel` varchar(255) NOT NULL DEFAULT '',
  `dstchannel` varchar(255) NOT NULL DEFAULT '',
  `lastapp` varchar(255) NOT NULL DEFAULT '',
  `lastdata` varchar(255) NOT NULL DEFAULT '',
  `duration` varchar(255) NOT NULL DEFAULT '',
  `billsec` varchar(255) NOT NULL DEFAULT '',
  `disposition` varchar(255) NOT NULL DEFAULT '',
  `amaflags` varchar(255) NOT NULL DEFAULT '',
  `accountcode` varchar(255) NOT NULL DEFAULT '',
  `uniqueid` varchar(255) NOT NULL DEFAULT '',
  `userfield` varchar(255) NOT NULL DEFAULT '',
  `did` varchar(255) NOT NULL DEFAULT '',
  `recordingfile` varchar(255) NOT NULL DEFAULT '',
  `cnum` varchar(255) NOT NULL DEFAULT '',
  `cnam` varchar(255) NOT NULL DEFAULT '',
  `outbound_cnum` varchar(255) NOT NULL DEFAULT '',
  `outbound_cnam` varchar(255) NOT NULL DEFAULT '',
  `dst_cnam` varchar(255) NOT NULL DEFAULT '',
  `linkedid` varchar(255) NOT NULL DEFAULT '',
  `peeraccount` varchar(255) NOT NULL DEFAULT '',
  `sequence` varchar(255) NOT NULL DEFAULT '',
  KEY `calldate` (`calldate`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

LOCK TABLES `cdr` WRITE;
/*!40000 ALTER TABLE `cdr` DISABLE KEYS */;
INSERT INTO `cdr` VALUES ('2026-03-02 08:01:00','\"Zhang\" <5101>','5101','8613812345678','from-internal','PJSIP/5101-00000001','PJSIP/trunk-ph-00000002','Dial','PJSIP/8613812345678@trunk-ph,300,Tt',125,120,'ANSWERED',3,'','1772438460.1','','','out-8613812345678-5101-20260302-080100-1772438460.1.wav','5101','Zhang','+442079460000','','','1772438460.1','',1),('2026-03-02 08:10:00','\"O\'Brien\" <+639170000001>','+639170000001','5102','from-trunk','PJSIP/trunk-ph-00000003','PJSIP/5102-00000004','Dial','PJSIP/5102,20,Tt',80,60,'ANSWERED',3,'','1772439000.3','','6001','','+639170000001','O\'Brien','','','','1772439000.3','',3),('2026-03-02 08:20:00','\"Zhang\" <5101>','5101','8613912345678','from-internal','PJSIP/5101-00000005','PJSIP/trunk-ph-00000006','Dial','PJSIP/8613912345678@trunk-ph,300,Tt',30,0,'NO ANSWER',3,'','1772439600.5','','',NULL,'5101','Zhang','+442079460000','','','1772439600.5','',5);
/*!40000 ALTER TABLE `cdr` ENABLE KEYS */;
UNLOCK TABLES;

DROP TABLE IF EXISTS `users`;
CREATE TABLE `users` (
  `extension` varchar(20) NOT NULL,
  `name` varchar(50) DEFAULT NULL,
  `voicemail` varchar(50) DEFAULT NULL,
  PRIMARY KEY (`extension`)
);
INSERT INTO `users` VALUES ('5101','Zhang','default'),('5102','O\'Brien',NULL);
-- Dump completed on 2026-03-02 23:59:59
