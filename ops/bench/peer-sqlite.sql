-- Plain-SQL peer of four svu-vakt rules, profile `nationell` (SPEC §4.1–4.5).
-- Dialect: SQLite 3.40+ with the JSON1 functions.
--
-- One row per finding: (rule, case_id, unit, due, status), `due` as UTC text
-- 'YYYY-MM-DD HH:MM:SS', status 'late' or 'missing'. Reads `events` and
-- `units`, and three helper tables:
--   peer_params(as_of)                      T; events after T have not happened
--   peer_tz(start_utc, end_utc, offset_seconds)
--                                           Europe/Stockholm's UTC offset per interval
--   peer_staffing_days(day)                 storhelg staffing days to judge, 'YYYY-MM-DD'
-- Instants are UTC; local (Stockholm) time = UTC + offset. A case's events
-- that tie on `at` are ordered by id, as the service reads them.
WITH RECURSIVE
-- T, the instant we judge as of; and the dates the data can touch: from the
-- first event (or staffing day) to two days past T.
params AS (
    SELECT datetime(p.as_of) AS t,
           (SELECT min(d) FROM (SELECT date(min(at)) AS d FROM events
                                UNION ALL
                                SELECT min(date(day)) FROM peer_staffing_days)) AS first_day,
           date(p.as_of, '+2 days') AS last_day
    FROM peer_params p
),
-- Those dates, one row each.
span(day) AS (
    SELECT first_day FROM params
    UNION ALL
    SELECT date(span.day, '+1 day') FROM span, params WHERE span.day < params.last_day
),
-- The offset intervals that touch those dates, in the same text format as events.at.
tz AS (
    SELECT datetime(z.start_utc) AS start_utc, datetime(z.end_utc) AS end_utc, z.offset_seconds
    FROM peer_tz z, params p
    WHERE datetime(z.end_utc) > p.first_day AND datetime(z.start_utc) < date(p.last_day, '+1 day')
),
-- Per date D: the offset in force at 00:00:00 and at 23:59:59 UTC, and when
-- the latter began (a DST switch that day, if it began after midnight).
day_offset AS (
    SELECT s.day,
           (SELECT z.offset_seconds FROM tz z
             WHERE z.start_utc <= s.day || ' 00:00:00' AND s.day || ' 00:00:00' < z.end_utc) AS off_start,
           (SELECT z.offset_seconds FROM tz z
             WHERE z.start_utc <= s.day || ' 23:59:59' AND s.day || ' 23:59:59' < z.end_utc) AS off_end,
           (SELECT z.start_utc FROM tz z
             WHERE z.start_utc <= s.day || ' 23:59:59' AND s.day || ' 23:59:59' < z.end_utc) AS off_end_from
    FROM span s
),
-- The same, with the UTC instants of local 00:00:00, 08:00:00, 15:00:00 and
-- 23:59:59 on D. The offset in force at a local wall time W on D is the one
-- at the UTC instant W - 2 h (Stockholm switches at 01:00 UTC, never between
-- W - 2 h and W - 1 h); for W = 00:00 that is the offset at 00:00 UTC.
clock AS (
    SELECT day, off_start, off_end, off_end_from,
           datetime(day || ' 00:00:00', '-' || off_start || ' seconds') AS day_start,
           datetime(day || ' 08:00:00', '-' ||
               CASE WHEN day || ' 06:00:00' >= off_end_from THEN off_end ELSE off_start END
               || ' seconds') AS at_0800,
           datetime(day || ' 12:00:00', '-' ||
               CASE WHEN day || ' 10:00:00' >= off_end_from THEN off_end ELSE off_start END
               || ' seconds') AS at_1200,
           datetime(day || ' 14:00:00', '-' ||
               CASE WHEN day || ' 12:00:00' >= off_end_from THEN off_end ELSE off_start END
               || ' seconds') AS at_1400,
           datetime(day || ' 15:00:00', '-' ||
               CASE WHEN day || ' 13:00:00' >= off_end_from THEN off_end ELSE off_start END
               || ' seconds') AS at_1500,
           datetime(day || ' 23:59:59', '-' ||
               CASE WHEN day || ' 21:59:59' >= off_end_from THEN off_end ELSE off_start END
               || ' seconds') AS end_of_day
    FROM day_offset
),
-- Case events that have happened by T. (The unary + keeps SQLite from the
-- index on `at`: an audit reads most of the table, and a scan is faster.)
ev AS (
    SELECT e.id, e.case_id, e.event_type AS type, e.at, e.unit, e.to_units, e.ref_id, e.value,
           -- By a registered slutenvård unit (an unknown one is not, §4.2, §4.6).
           coalesce(u.kind = 'slutenvard', 0) AS slv
    FROM events e CROSS JOIN params p
    LEFT JOIN units u ON u.id = e.unit
    WHERE e.case_id IS NOT NULL AND +e.at <= p.t
),
-- One pass per case: when each kind of event first happened, and which
-- event (the first or the latest, in the order (at, id)) holds what the rules
-- read. `at` is fixed-width text ('YYYY-MM-DD HH:MM:SS', 19 characters), so
-- at || id sorts exactly as (at, id), and the id starts at character 20.
case_keys AS (
    SELECT case_id,
           min(CASE WHEN type = 'inskrivning' THEN at END)            AS ins_at,
           min(CASE WHEN type = 'bedomning' THEN at END)              AS bed_at,
           min(CASE WHEN type = 'inskrivningsmeddelande' THEN at END) AS im_at,
           -- Only the fast vårdkontakt's kallelse counts (§4.2): not a ward's.
           min(CASE WHEN type = 'kallelse_sip' AND NOT slv THEN at END) AS kallelse_at,
           min(CASE WHEN type = 'avslut' THEN at END)                 AS avslut_at,
           min(CASE WHEN type = 'avslut' AND (slv OR coalesce(value, '') = 'avliden') THEN at END) AS strong_avslut_at,
           min(CASE WHEN type = 'utskrivningsklar' THEN at END)       AS first_uk_at,
           substr(min(CASE WHEN type = 'inskrivning' THEN at || id END), 20)            AS first_ins_id,
           substr(min(CASE WHEN type = 'inskrivningsmeddelande' THEN at || id END), 20) AS first_im_id,
           substr(max(CASE WHEN type = 'behov_av_sip' THEN at || id END), 20)           AS latest_behov_id,
           substr(max(CASE WHEN type = 'sparfarg' THEN at || id END), 20)               AS latest_sparfarg_id,
           substr(max(CASE WHEN type = 'samtycke_sip' THEN at || id END), 20)           AS latest_samtycke_id,
           substr(max(CASE WHEN type = 'fast_vardkontakt' THEN at || id END), 20)       AS latest_fvk_id
    FROM ev
    GROUP BY case_id
),
-- One row per case: the facts the rules need.
case_facts AS (
    SELECT k.case_id, k.ins_at, k.bed_at, k.im_at, k.kallelse_at, k.avslut_at,
           -- The avslut that also ends the SIP chain (SPEC §4.6): the first
           -- when it came at or before the first UK, else the first by a
           -- slutenvård unit or `avliden`.
           CASE WHEN k.avslut_at IS NOT NULL AND (k.first_uk_at IS NULL OR k.avslut_at <= k.first_uk_at)
                THEN k.avslut_at ELSE k.strong_avslut_at END AS sip_avslut_at,
           ins.unit     AS ins_unit,
           im.to_units  AS first_im_to,
           fvk.unit     AS fvk_latest_unit,
           -- SIP needed: latest behov_av_sip true or latest spårfärg gul/röd,
           -- and the latest samtycke_sip not false.
           (coalesce(behov.value, '') = 'true' OR coalesce(spar.value, '') IN ('gul', 'rod'))
           AND coalesce(samtycke.value, '') <> 'false' AS sip_needed
    FROM case_keys k
    LEFT JOIN events ins      ON ins.id = k.first_ins_id
    LEFT JOIN events im       ON im.id = k.first_im_id
    LEFT JOIN events behov    ON behov.id = k.latest_behov_id
    LEFT JOIN events spar     ON spar.id = k.latest_sparfarg_id
    LEFT JOIN events samtycke ON samtycke.id = k.latest_samtycke_id
    LEFT JOIN events fvk      ON fvk.id = k.latest_fvk_id
),
-- The first öppenvård unit in the `to` of the case's first IM.
first_im_oppenvard AS (
    SELECT case_id, unit FROM (
        SELECT cf.case_id, j.value AS unit,
               row_number() OVER (PARTITION BY cf.case_id ORDER BY j.key) AS rn
        FROM case_facts cf, json_each(cf.first_im_to) j
        JOIN units u ON u.id = j.value AND u.kind = 'oppenvard'
    ) WHERE rn = 1
),
-- The first withdrawal of each UK.
withdrawal AS (
    SELECT case_id, ref_id, min(at) AS at
    FROM ev
    WHERE type = 'atertag_utskrivningsklar'
    GROUP BY case_id, ref_id
),
-- Each UK with its local time. (CROSS JOIN fixes SQLite's join order:
-- UK by UK, looking up its date.)
uk_local AS (
    SELECT ev.case_id, ev.id, ev.to_units,
           datetime(ev.at, '+' ||
               CASE WHEN ev.at >= c.off_end_from THEN c.off_end ELSE c.off_start END
               || ' seconds') AS local_at
    FROM ev CROSS JOIN clock c
    WHERE ev.type = 'utskrivningsklar' AND c.day = date(ev.at)
),
-- Each UK with its two dues: kallelse end of (UK's local date + 3 days);
-- kvittens end of dag 0 (brytpunkt 12:00). The withdrawal, if any, for each.
-- A due past the clock's span is after T, so it stays NULL and is never judged.
uk AS (
    SELECT u.case_id, u.id AS uk_id, u.to_units,
           k.end_of_day AS kallelse_due,
           d.end_of_day AS kvittens_due,
           w.at         AS withdrawn_at
    FROM uk_local u
    LEFT JOIN clock k ON k.day = date(u.local_at, '+3 days')
    LEFT JOIN clock d ON d.day = CASE WHEN time(u.local_at) < '12:00:00'
                                      THEN date(u.local_at)
                                      ELSE date(u.local_at, '+1 day') END
    LEFT JOIN withdrawal w ON w.case_id = u.case_id AND w.ref_id = u.id
),

-- §4.1 inskrivningsmeddelande_24h: 24 h from the first inskrivning (or the
-- first bedömning, when later); met by the case's first IM.
im_24h AS (
    SELECT case_id, ins_unit AS unit, im_at, avslut_at,
           datetime(CASE WHEN bed_at > ins_at THEN bed_at ELSE ins_at END, '+24 hours') AS due
    FROM case_facts
    WHERE ins_at IS NOT NULL
),

-- §4.2 kallelse_sip: each UK not withdrawn before the due, when SIP is
-- needed; due passed and not cancelled by an avslut before it.
kallelse AS (
    SELECT uk.case_id, uk.uk_id, uk.kallelse_due AS due, cf.kallelse_at,
           cf.fvk_latest_unit, cf.sip_avslut_at
    FROM uk
    JOIN case_facts cf ON cf.case_id = uk.case_id
    JOIN params p ON uk.kallelse_due < p.t
    WHERE cf.sip_needed
      AND (uk.withdrawn_at IS NULL OR uk.withdrawn_at >= uk.kallelse_due)
      AND (cf.sip_avslut_at IS NULL OR uk.kallelse_due <= cf.sip_avslut_at)
),
-- The latest fast vårdkontakt at or before each kallelse due.
kallelse_fvk AS (
    SELECT uk_id, unit FROM (
        SELECT k.uk_id, f.unit,
               row_number() OVER (PARTITION BY k.uk_id ORDER BY f.at DESC, f.id DESC) AS rn
        FROM kallelse k
        JOIN ev f ON f.case_id = k.case_id AND f.type = 'fast_vardkontakt' AND f.at <= k.due
    ) WHERE rn = 1
),

-- §4.3 kvittens_utskrivningsklar: each UK not withdrawn before the end of
-- dag 0, each distinct recipient (an empty `to` means every unit the case's
-- IMs went to); met by a kvittens by that unit referring to the UK.
kvittens_uk AS (
    SELECT uk.case_id, uk.uk_id, uk.to_units, uk.kvittens_due AS due
    FROM uk
    JOIN case_facts cf ON cf.case_id = uk.case_id
    JOIN params p ON uk.kvittens_due < p.t
    WHERE (uk.withdrawn_at IS NULL OR uk.withdrawn_at >= uk.kvittens_due)
      AND (cf.avslut_at IS NULL OR uk.kvittens_due <= cf.avslut_at)
),
kvittens_recipient AS (
    SELECT k.case_id, k.uk_id, k.due, j.value AS unit
    FROM kvittens_uk k, json_each(k.to_units) j
    UNION
    SELECT k.case_id, k.uk_id, k.due, j.value
    FROM kvittens_uk k
    JOIN ev im ON im.case_id = k.case_id AND im.type = 'inskrivningsmeddelande',
         json_each(im.to_units) j
    WHERE json_array_length(k.to_units) = 0
),
-- The first kvittens per case, acknowledged message and acknowledging unit.
kvittens_first AS (
    SELECT case_id, ref_id, unit, min(at) AS at
    FROM ev
    WHERE type = 'kvittens'
    GROUP BY case_id, ref_id, unit
),

-- §4.4 bemanning_storhelg: the staffing days whose 15:00 local has passed,
-- with the UTC instants that bound the local day (up to T at most: events
-- after T do not count) and its 08:00–15:00.
staffing_day AS (
    SELECT d.day, c.day_start, c.at_0800, c.at_1200, c.at_1400, c.at_1500 AS due, min(c.end_of_day, p.t) AS day_end
    FROM peer_staffing_days d
    JOIN clock c ON c.day = date(d.day)
    JOIN params p ON c.at_1500 < p.t
),
-- The units staffed on each: a bemanning dated that day (any time), or
-- other acts of the unit that day in both readings, 08:00:00–11:59:59 and
-- 14:00:00–15:00:00 (SPEC §4.4). (CROSS JOIN fixes SQLite's join order:
-- day by day through the index on events (at).)
staffed AS (
    SELECT s.day, e.unit
    FROM staffing_day s
    CROSS JOIN events e
    WHERE e.at BETWEEN s.day_start AND s.day_end
    GROUP BY s.day, s.at_0800, s.at_1200, s.at_1400, s.due, e.unit
    HAVING max(e.event_type = 'bemanning')
        OR (max(e.event_type <> 'bemanning' AND e.at >= s.at_0800 AND e.at < s.at_1200)
            AND max(e.event_type <> 'bemanning' AND e.at BETWEEN s.at_1400 AND s.due))
)

-- The findings. Met (a fulfilling event at or before due) yields no row;
-- late: the first fulfilling event came after due (by T); missing: none yet.
SELECT 'inskrivningsmeddelande_24h' AS rule, i.case_id, i.unit, i.due,
       CASE WHEN i.im_at IS NULL THEN 'missing' ELSE 'late' END AS status
FROM im_24h i JOIN params p ON i.due < p.t
WHERE (i.avslut_at IS NULL OR i.due <= i.avslut_at)
  AND (i.im_at IS NULL OR i.im_at > i.due)

UNION ALL
SELECT 'kallelse_sip', k.case_id,
       coalesce(f.unit, k.fvk_latest_unit, o.unit),
       k.due,
       CASE WHEN k.kallelse_at IS NULL THEN 'missing' ELSE 'late' END
FROM kallelse k
LEFT JOIN kallelse_fvk f ON f.uk_id = k.uk_id
LEFT JOIN first_im_oppenvard o ON o.case_id = k.case_id
WHERE k.kallelse_at IS NULL OR k.kallelse_at > k.due

UNION ALL
SELECT 'kvittens_utskrivningsklar', r.case_id, r.unit, r.due,
       CASE WHEN q.at IS NULL THEN 'missing' ELSE 'late' END
FROM kvittens_recipient r
LEFT JOIN kvittens_first q ON q.case_id = r.case_id AND q.ref_id = r.uk_id AND q.unit = r.unit
WHERE q.at IS NULL OR q.at > r.due

UNION ALL
SELECT 'bemanning_storhelg', NULL, u.id, s.due, 'missing'
FROM staffing_day s
JOIN units u ON u.storhelg
LEFT JOIN staffed st ON st.day = s.day AND st.unit = u.id
WHERE st.unit IS NULL
