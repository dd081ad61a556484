-- Plain-SQL peer of four svu-vakt rules, profile `nationell` (SPEC §4.1–4.5).
-- Dialect: PostgreSQL 15.
--
-- One row per finding: (rule, case_id, unit, due, status), `due` a UTC
-- timestamp, status 'late' or 'missing'. Reads `events` and `units`, and
-- three helper tables:
--   peer_params(as_of)                      T; events after T have not happened
--   peer_tz(start_utc, end_utc, offset_seconds)
--                                           Europe/Stockholm's UTC offset per interval
--   peer_staffing_days(day)                 storhelg staffing days to judge, 'YYYY-MM-DD'
-- Instants are UTC `timestamp`s; local (Stockholm) time = UTC + offset. A
-- case's events that tie on `at` are ordered by id, as the service reads them.
WITH
-- T, the instant we judge as of; and the dates the data can touch: from the
-- first event (or staffing day) to two days past T.
params AS (
    SELECT p.as_of AS t,
           (SELECT min(d) FROM (SELECT min(at)::date AS d FROM events
                                UNION ALL
                                SELECT min(day::date) FROM peer_staffing_days) x) AS first_day,
           (p.as_of + interval '2 days')::date AS last_day
    FROM peer_params p
),
-- Those dates, one row each.
span AS (
    SELECT g::date AS day
    FROM params p, generate_series(p.first_day::timestamp, p.last_day::timestamp, interval '1 day') AS g
),
-- The offset intervals that touch those dates.
tz AS (
    SELECT z.start_utc, z.end_utc, z.offset_seconds
    FROM peer_tz z, params p
    WHERE z.end_utc > p.first_day AND z.start_utc < p.last_day + 1
),
-- Per date D: the offset in force at 00:00:00 and at 23:59:59 UTC, and when
-- the latter began (a DST switch that day, if it began after midnight).
day_offset AS (
    SELECT s.day,
           (SELECT z.offset_seconds FROM tz z
             WHERE z.start_utc <= s.day + time '00:00:00' AND s.day + time '00:00:00' < z.end_utc) AS off_start,
           (SELECT z.offset_seconds FROM tz z
             WHERE z.start_utc <= s.day + time '23:59:59' AND s.day + time '23:59:59' < z.end_utc) AS off_end,
           (SELECT z.start_utc FROM tz z
             WHERE z.start_utc <= s.day + time '23:59:59' AND s.day + time '23:59:59' < z.end_utc) AS off_end_from
    FROM span s
),
-- The same, with the UTC instants of local 00:00:00, 08:00:00, 15:00:00 and
-- 23:59:59 on D. The offset in force at a local wall time W on D is the one
-- at the UTC instant W - 2 h (Stockholm switches at 01:00 UTC, never between
-- W - 2 h and W - 1 h); for W = 00:00 that is the offset at 00:00 UTC.
clock AS (
    SELECT day, off_start, off_end, off_end_from,
           day + time '00:00:00' - interval '1 second' * off_start AS day_start,
           day + time '08:00:00' - interval '1 second' *
               CASE WHEN day + time '06:00:00' >= off_end_from THEN off_end ELSE off_start END AS at_0800,
           day + time '12:00:00' - interval '1 second' *
               CASE WHEN day + time '10:00:00' >= off_end_from THEN off_end ELSE off_start END AS at_1200,
           day + time '14:00:00' - interval '1 second' *
               CASE WHEN day + time '12:00:00' >= off_end_from THEN off_end ELSE off_start END AS at_1400,
           day + time '15:00:00' - interval '1 second' *
               CASE WHEN day + time '13:00:00' >= off_end_from THEN off_end ELSE off_start END AS at_1500,
           day + time '23:59:59' - interval '1 second' *
               CASE WHEN day + time '21:59:59' >= off_end_from THEN off_end ELSE off_start END AS end_of_day
    FROM day_offset
),
-- Case events that have happened by T; `slv`: by a registered slutenvård
-- unit (an unknown unit is not one, SPEC §4.2, §4.6).
ev AS (
    SELECT e.id, e.case_id, e.event_type AS type, e.at, e.unit, e.to_units, e.ref_id, e.value,
           (u.kind = 'slutenvard') IS TRUE AS slv
    FROM events e CROSS JOIN params p
    LEFT JOIN units u ON u.id = e.unit
    WHERE e.case_id IS NOT NULL AND e.at <= p.t
),
-- One row per case: the facts the rules need. "First" and "latest" go by
-- (at, id), the order in which the service reads a case.
case_facts AS (
    SELECT case_id, ins_at, bed_at, im_at, kallelse_at, avslut_at,
           -- The avslut that also ends the SIP chain (SPEC §4.6): the first
           -- when it came at or before the first UK, else the first by a
           -- slutenvård unit or `avliden`.
           CASE WHEN avslut_at IS NOT NULL AND (first_uk_at IS NULL OR avslut_at <= first_uk_at)
                THEN avslut_at ELSE strong_avslut_at END AS sip_avslut_at,
           ins_unit, first_im_to, fvk_latest_unit,
           -- SIP needed: latest behov_av_sip true or latest spårfärg gul/röd,
           -- and the latest samtycke_sip not false.
           (coalesce(behov, '') = 'true' OR coalesce(sparfarg, '') IN ('gul', 'rod'))
           AND coalesce(samtycke, '') <> 'false' AS sip_needed
    FROM (
        SELECT case_id,
               min(at) FILTER (WHERE type = 'inskrivning')            AS ins_at,
               min(at) FILTER (WHERE type = 'bedomning')              AS bed_at,
               min(at) FILTER (WHERE type = 'inskrivningsmeddelande') AS im_at,
               -- Only the fast vårdkontakt's kallelse counts (§4.2): not a ward's.
               min(at) FILTER (WHERE type = 'kallelse_sip' AND NOT slv) AS kallelse_at,
               min(at) FILTER (WHERE type = 'avslut')                 AS avslut_at,
               min(at) FILTER (WHERE type = 'avslut' AND (slv OR coalesce(value, '') = 'avliden')) AS strong_avslut_at,
               min(at) FILTER (WHERE type = 'utskrivningsklar')       AS first_uk_at,
               (array_agg(unit ORDER BY at, id)
                    FILTER (WHERE type = 'inskrivning'))[1]                 AS ins_unit,
               (array_agg(to_units ORDER BY at, id)
                    FILTER (WHERE type = 'inskrivningsmeddelande'))[1]      AS first_im_to,
               (array_agg(value ORDER BY at DESC, id DESC)
                    FILTER (WHERE type = 'behov_av_sip'))[1]                AS behov,
               (array_agg(value ORDER BY at DESC, id DESC)
                    FILTER (WHERE type = 'sparfarg'))[1]                    AS sparfarg,
               (array_agg(value ORDER BY at DESC, id DESC)
                    FILTER (WHERE type = 'samtycke_sip'))[1]                AS samtycke,
               (array_agg(unit ORDER BY at DESC, id DESC)
                    FILTER (WHERE type = 'fast_vardkontakt'))[1]            AS fvk_latest_unit
        FROM ev
        GROUP BY case_id
    ) c
),
-- The first öppenvård unit in the `to` of the case's first IM.
first_im_oppenvard AS (
    SELECT DISTINCT ON (cf.case_id) cf.case_id, j.unit
    FROM case_facts cf
    CROSS JOIN LATERAL jsonb_array_elements_text(cf.first_im_to::jsonb) WITH ORDINALITY AS j(unit, pos)
    JOIN units u ON u.id = j.unit AND u.kind = 'oppenvard'
    ORDER BY cf.case_id, j.pos
),
-- The first withdrawal of each UK.
withdrawal AS (
    SELECT case_id, ref_id, min(at) AS at
    FROM ev
    WHERE type = 'atertag_utskrivningsklar'
    GROUP BY case_id, ref_id
),
-- Each UK with its local time.
uk_local AS (
    SELECT ev.case_id, ev.id, ev.to_units,
           ev.at + interval '1 second' *
               CASE WHEN ev.at >= c.off_end_from THEN c.off_end ELSE c.off_start END AS local_at
    FROM ev JOIN clock c ON c.day = ev.at::date
    WHERE ev.type = 'utskrivningsklar'
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
    LEFT JOIN clock k ON k.day = u.local_at::date + 3
    LEFT JOIN clock d ON d.day = CASE WHEN u.local_at::time < time '12:00:00'
                                      THEN u.local_at::date
                                      ELSE u.local_at::date + 1 END
    LEFT JOIN withdrawal w ON w.case_id = u.case_id AND w.ref_id = u.id
),

-- §4.1 inskrivningsmeddelande_24h: 24 h from the first inskrivning (or the
-- first bedömning, when later); met by the case's first IM.
im_24h AS (
    SELECT case_id, ins_unit AS unit, im_at, avslut_at,
           greatest(ins_at, bed_at) + interval '24 hours' AS due
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
    SELECT DISTINCT ON (k.uk_id) k.uk_id, f.unit
    FROM kallelse k
    JOIN ev f ON f.case_id = k.case_id AND f.type = 'fast_vardkontakt' AND f.at <= k.due
    ORDER BY k.uk_id, f.at DESC, f.id DESC
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
    SELECT k.case_id, k.uk_id, k.due, j.unit
    FROM kvittens_uk k
    CROSS JOIN LATERAL jsonb_array_elements_text(k.to_units::jsonb) AS j(unit)
    UNION
    SELECT k.case_id, k.uk_id, k.due, j.unit
    FROM kvittens_uk k
    JOIN ev im ON im.case_id = k.case_id AND im.type = 'inskrivningsmeddelande'
    CROSS JOIN LATERAL jsonb_array_elements_text(im.to_units::jsonb) AS j(unit)
    WHERE jsonb_array_length(k.to_units::jsonb) = 0
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
    SELECT d.day::date AS day, c.day_start, c.at_0800, c.at_1200, c.at_1400, c.at_1500 AS due,
           least(c.end_of_day, p.t) AS day_end
    FROM peer_staffing_days d
    JOIN clock c ON c.day = d.day::date
    JOIN params p ON c.at_1500 < p.t
),
-- The units staffed on each: a bemanning dated that day (any time), or
-- other acts of the unit that day in both readings, 08:00:00–11:59:59 and
-- 14:00:00–15:00:00 (SPEC §4.4).
staffed AS (
    SELECT s.day, e.unit
    FROM staffing_day s
    JOIN events e ON e.at BETWEEN s.day_start AND s.day_end
    GROUP BY s.day, s.at_0800, s.at_1200, s.at_1400, s.due, e.unit
    HAVING bool_or(e.event_type = 'bemanning')
        OR (bool_or(e.event_type <> 'bemanning' AND e.at >= s.at_0800 AND e.at < s.at_1200)
            AND bool_or(e.event_type <> 'bemanning' AND e.at BETWEEN s.at_1400 AND s.due))
)

-- The findings. Met (a fulfilling event at or before due) yields no row;
-- late: the first fulfilling event came after due (by T); missing: none yet.
SELECT 'inskrivningsmeddelande_24h'::text AS rule, i.case_id, i.unit, i.due,
       CASE WHEN i.im_at IS NULL THEN 'missing' ELSE 'late' END::text AS status
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
