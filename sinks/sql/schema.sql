-- qrtrace tables. Kept to what ClickHouse 18.16 (Debian's server) and chDB both run:
-- no TTL, no LowCardinality, no DateTime64. Times are Int64 microseconds since the epoch (UTC).
-- Day partitions (UTC day number) make retention a DROP PARTITION; ReplacingMergeTree keys make
-- every insert idempotent, so a retried batch cannot create duplicates.
CREATE DATABASE IF NOT EXISTS qrtrace;

-- Which layout this store has; sinks refuse a store written by another layout instead of failing mid-query.
CREATE TABLE IF NOT EXISTS qrtrace.schema_meta (version UInt32, created_at_us Int64) ENGINE = TinyLog;

CREATE TABLE IF NOT EXISTS qrtrace.venue_categories (
    code String, group_code String, name_vi String, name_en String,
    overseeing_office String, default_dwell_minutes UInt32
) ENGINE = ReplacingMergeTree ORDER BY code;

CREATE TABLE IF NOT EXISTS qrtrace.communes (
    commune_code String, name_vi String, unit_type String, district_code String,
    district_name_vi String, province_code String, province_name_vi String
) ENGINE = ReplacingMergeTree ORDER BY commune_code;

CREATE TABLE IF NOT EXISTS qrtrace.venues (
    venue_id String, name String, category String, commune_code String, capacity UInt32,
    registered_at_us Int64, zones String DEFAULT ''
) ENGINE = ReplacingMergeTree(registered_at_us) ORDER BY venue_id;

-- The log of check-ins as received (first deliveries; a retry collapses onto its scan). `outcome` is the
-- outcome on arrival, for ingest charts; the current one, which a late check-in can change, is in
-- checkin_outcomes.
CREATE TABLE IF NOT EXISTS qrtrace.checkins (
    scan_id String, venue_id String, person String, direction Int8, event_time_us Int64,
    offset_minutes Int16, mode String, scanner_id String, declaration_sealed String,
    outcome String, ingested_at_us Int64, zone String DEFAULT ''
) ENGINE = ReplacingMergeTree PARTITION BY intDiv(event_time_us, 86400000000)
ORDER BY (venue_id, event_time_us, scan_id);

-- Each check-in's current outcome (opened, closed, repeat, unmatched_checkout, checkout_after_cap): a
-- check-in arriving late re-pairs its (person, venue) and re-emits the outcomes it changed with a higher
-- version. Ordered by (venue, person) so the processor reads a key's stored history back in one range.
CREATE TABLE IF NOT EXISTS qrtrace.checkin_outcomes (
    scan_id String, venue_id String, person String, event_time_us Int64, outcome String, version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(event_time_us, 86400000000)
ORDER BY (venue_id, person, event_time_us, scan_id);

-- Visits twice: by venue for "who else was there", by person for "where was this person". zone: the zone
-- of the check-in that opened the visit ('' at a venue without zones); venues.zones lists a venue's zones
-- joined by ';' ('' = none). Stores of layout v4 get these columns on open (migrate_v5_*.sql).
-- A visit is identified by the scan that opened it (opened_by) with its venue, person and start. Every
-- change of a visit (closed by a check-out, re-paired by a late check-in) is a row of a higher version;
-- FINAL (or LIMIT 1 BY, highest version first) keeps the latest. withdrawn = 1: the visit no longer
-- exists (a late earlier check-in made its opening scan a repeat scan); every reader drops such rows.
-- Tracing reads both as index range scans: the primary key (venue_id, start_bucket) lets a hop ask for
-- exactly the (venue, 6-hour bucket) cells around its sources with a tuple IN, so the overlap join never
-- reads a venue's whole history; small granules (256 rows) keep a point lookup to a few KB. Buckets of
-- 6 h, not 1 h: the index analysis of a tuple IN costs per cell and per part (measured on chDB: ~40 us
-- per cell over 21 day parts), and a venue's 6 h are a few hundred rows at most. start_bucket is a
-- function of start_us, so a visit's identity (and ReplacingMergeTree's dedupe) is unchanged.
-- The embedded store also shrinks their compressed blocks (chdb_tuning.sql; 18.16 has no such table
-- setting).
CREATE TABLE IF NOT EXISTS qrtrace.visits_by_venue (
    venue_id String, person String, start_us Int64, end_us Int64, closed_by Int8, version UInt64,
    opened_by String, start_bucket UInt32 DEFAULT toUInt32(intDiv(start_us, 21600000000)),
    withdrawn UInt8 DEFAULT 0, zone String DEFAULT ''
) ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(start_us, 86400000000)
PRIMARY KEY (venue_id, start_bucket) ORDER BY (venue_id, start_bucket, start_us, person, opened_by)
SETTINGS index_granularity = 256;

CREATE TABLE IF NOT EXISTS qrtrace.visits_by_person (
    venue_id String, person String, start_us Int64, end_us Int64, closed_by Int8, version UInt64,
    opened_by String, withdrawn UInt8 DEFAULT 0, zone String DEFAULT ''
) ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(start_us, 86400000000)
PRIMARY KEY (person, start_us) ORDER BY (person, start_us, venue_id, opened_by)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS qrtrace.visits_by_person_mv TO qrtrace.visits_by_person
AS SELECT venue_id, person, start_us, end_us, closed_by, version, opened_by, withdrawn, zone FROM qrtrace.visits_by_venue;

-- The visit feed: every visit row any writer stores (an ingesting process, a Faust worker, a repair's
-- insert), stamped by the store when it is inserted. The trace index (sinks/trace_index_files.py)
-- follows it by that stamp. Kept a few days (the index rebuilds from the visits when it fell further
-- behind); partitions are UTC days of the stamp.
CREATE TABLE IF NOT EXISTS qrtrace.visit_feed (
    stored_at DateTime, venue_id String, person String, start_us Int64, end_us Int64, version UInt64,
    opened_by String, withdrawn UInt8, zone String DEFAULT ''
) ENGINE = MergeTree PARTITION BY intDiv(toUInt32(stored_at), 86400) ORDER BY stored_at;

CREATE MATERIALIZED VIEW IF NOT EXISTS qrtrace.visit_feed_mv TO qrtrace.visit_feed
AS SELECT now() AS stored_at, venue_id, person, start_us, end_us, version, opened_by, withdrawn, zone
FROM qrtrace.visits_by_venue;

-- The longest visit stored per day: a hop looks back this far before a source's start for visits
-- still under way (a visit that started earlier but had not ended). Kept by the store itself, so
-- a 48 h visit closed by a late check-out widens the look-back at once, never silently misses.
-- Not partitioned (one tiny part to read); rows of days dropped by retention only keep the bound wide.
CREATE TABLE IF NOT EXISTS qrtrace.visit_spans (
    day Int64, longest AggregateFunction(max, Int64)
) ENGINE = AggregatingMergeTree ORDER BY day;

CREATE MATERIALIZED VIEW IF NOT EXISTS qrtrace.visit_spans_mv TO qrtrace.visit_spans
AS SELECT intDiv(start_us, 86400000000) AS day, maxState(end_us - start_us) AS longest
FROM qrtrace.visits_by_venue GROUP BY day;

CREATE TABLE IF NOT EXISTS qrtrace.occupancy (
    venue_id String, window_start_us Int64, arrivals UInt32, present UInt32, capacity UInt32,
    over_capacity UInt8, version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(window_start_us, 86400000000)
ORDER BY (venue_id, window_start_us);

CREATE TABLE IF NOT EXISTS qrtrace.dead_letters (
    dl_id String, received_at_us Int64, source String, reason String, detail String,
    payload_redacted String, payload_sealed String
) ENGINE = ReplacingMergeTree PARTITION BY intDiv(received_at_us, 86400000000)
ORDER BY (reason, dl_id);

-- Who a pseudonym is: the identifier they check in with, sealed. contact_sealed is no longer written
-- (always ''): rows of earlier versions that hold one are copied into contact_details when a store is
-- opened (migrate_contacts.sql), because a newer row here replaces an older one.
CREATE TABLE IF NOT EXISTS qrtrace.identity_vault (
    person String, identifier_sealed String, contact_sealed String, sealed_at_us Int64
) ENGINE = ReplacingMergeTree(sealed_at_us) ORDER BY person;

-- How to reach a pseudonym: contacts are only ever added, never replaced, so a check-in cannot erase a
-- phone number and an earlier number stays readable; re-identification calls the latest. The key holds
-- the sealed value, so a retried insert collapses while two different entries never do. Not
-- day-partitioned: like identity_vault it outlives the check-ins' retention.
CREATE TABLE IF NOT EXISTS qrtrace.contact_details (
    person String, contact_sealed String, seen_at_us Int64, source String
) ENGINE = ReplacingMergeTree ORDER BY (person, seen_at_us, contact_sealed);

CREATE TABLE IF NOT EXISTS qrtrace.cases (
    case_id String, person String, infectious_from_us Int64, infectious_to_us Int64,
    declared_at_us Int64, declared_by String
) ENGINE = ReplacingMergeTree(declared_at_us) ORDER BY case_id;

-- Append-only: who traced or re-identified whom, when, and why.
-- seq, prev_hash, entry_hash: the hash chain (sinks/audit.py), added to older stores' tables on open.
CREATE TABLE IF NOT EXISTS qrtrace.audit_log (
    at_us Int64, actor String, action String, case_id String, subject String, purpose String,
    detail String, seq UInt64, prev_hash String, entry_hash String
) ENGINE = MergeTree PARTITION BY intDiv(at_us, 86400000000) ORDER BY at_us;

-- Traces run from the API, kept so they can be fetched and exported later. The result is the
-- pseudonymous JSON document: identifiers and phone numbers are looked up only when a role allowed to
-- re-identify reads it (and that read is audited). Day-partitioned, so retention drops it with the rest.
CREATE TABLE IF NOT EXISTS qrtrace.trace_runs (
    trace_id String, started_at_us Int64, finished_at_us Int64, actor String, case_ids String,
    purpose String, rules String, result String
) ENGINE = ReplacingMergeTree(finished_at_us) PARTITION BY intDiv(started_at_us, 86400000000)
ORDER BY trace_id;

-- Public exposure sites (queries/exposure_sites.py): a case's venues and time windows, published for
-- anyone to check. site_id is a digest of (case, venue, window): re-publishing the same case and window
-- writes the same ids, so ReplacingMergeTree keeps one row per site (the highest version); a withdrawal
-- is a newer row with withdrawn = 1. case_id and case_person (the pseudonym) are internal, never served.
-- Partitioned by the UTC day the window starts: a site's rows (its publications and its withdrawal) share
-- it, and retention drops them with the visits they came from (the case's pseudonym goes with them).
CREATE TABLE IF NOT EXISTS qrtrace.exposure_sites (
    site_id String, venue_id String, from_us Int64, to_us Int64, advice_vi String, advice_en String,
    case_id String, case_person String, published_at_us Int64, published_by String, withdrawn UInt8,
    withdrawn_at_us Int64, withdrawn_by String, version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(from_us, 86400000000) ORDER BY site_id;

-- Notifications (notify/): the outbox holds one row per message, its id a stable hash of (case pseudonym,
-- contact pseudonym, tier), so writing the same message twice keeps one. Pseudonymous: the phone number is
-- opened from contact_details only when the message is sent (audited), and never stored here. Partitioned by
-- the day of the contact's first exposure, so retention drops a message with the visits it was made from.
CREATE TABLE IF NOT EXISTS qrtrace.notification_outbox (
    message_id String, trace_id String, case_id String, case_person String, person String, tier String,
    hop UInt8, venue_id String, first_exposure_us Int64, lang String, text String, created_at_us Int64
) ENGINE = ReplacingMergeTree PARTITION BY intDiv(first_exposure_us, 86400000000) ORDER BY message_id;

-- Each message's delivery status, versioned: version = rank << 52 | updated_at_us with rank queued 0,
-- failed 1, sent 2, so a sent message is never put back to queued or failed by a later write (an outbox
-- written again, a status replayed twice). gateway is the kind (webhook, file, kafka), never its address.
CREATE TABLE IF NOT EXISTS qrtrace.notification_status (
    message_id String, first_exposure_us Int64, status String, reason String, attempts UInt16, gateway String,
    updated_at_us Int64, version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(first_exposure_us, 86400000000) ORDER BY message_id;

-- The deployment census (queries/census.py): the establishments a commune must see deploy QR, imported
-- from the commune's own spreadsheet. Keyed per (commune_code, establishment_id): establishment ids are
-- numbered by each commune's list, so two communes may both have a "CS001". version is the import (or
-- link) time: re-importing the same file keeps the same rows, a later import or link replaces a row.
-- venue_id links the establishment to its registered venue ('' = not registered yet). Reference data:
-- not day-partitioned, retention never drops it.
CREATE TABLE IF NOT EXISTS qrtrace.census (
    commune_code String, establishment_id String, name String, category String, address String,
    venue_id String, imported_at_us Int64, imported_by String, version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY (commune_code, establishment_id);
-- Contact follow-up (queries/follow_up.py, sinks/follow_up.py): one record per (case, contact), assigned to the
-- commune of the venue of the contact's first exposure. Pseudonymous like the trace it came from. version 0 for
-- a record as created (writing it again never overrides a change), an update's version its time (strictly
-- increasing per record). Day-partitioned by the first exposure: retention drops it with its visits.
CREATE TABLE IF NOT EXISTS qrtrace.follow_ups (
    follow_up_id String, case_id String, person String, hop UInt8, risk String, venue_id String,
    commune_code String, exposed_from_us Int64, exposed_to_us Int64, trace_id String, status String,
    quarantine_from_us Int64, quarantine_until_us Int64, tested_on_us Int64, new_case_id String, notes String,
    created_at_us Int64, updated_at_us Int64, updated_by String, version UInt64
) ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(exposed_from_us, 86400000000) ORDER BY follow_up_id;

-- Every change of a follow-up record, append-only: who changed which field from what to what, and when.
CREATE TABLE IF NOT EXISTS qrtrace.follow_up_history (
    follow_up_id String, commune_code String, exposed_from_us Int64, at_us Int64, actor String, field String,
    from_value String, to_value String
) ENGINE = MergeTree PARTITION BY intDiv(exposed_from_us, 86400000000) ORDER BY (follow_up_id, at_us);
