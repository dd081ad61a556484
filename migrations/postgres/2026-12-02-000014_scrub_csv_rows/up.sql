-- A CSV row used to be kept whole in events.raw, its unmapped columns (a
-- patient's name, a free-text comment) in clear. What is kept of an event
-- is now the event as understood (docs/import.md): every raw that is not a
-- JSON object (the CSV rows; JSON lines always are objects) is rewritten
-- from the stored fields, the patient as its hash. Nothing reads raw back.
UPDATE events SET raw = json_build_object(
    'id', id,
    'case', case_id,
    'type', event_type,
    'at', to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'unit', unit,
    'to', to_units::json,
    'ref', ref_id,
    'value', value,
    'patient', CASE WHEN patient_hash IS NULL THEN NULL ELSE 'hmac:' || patient_hash END
)::text WHERE substr(ltrim(raw), 1, 1) <> '{';
