-- A CSV row used to be kept whole in events.raw, its unmapped columns (a
-- patient's name, a free-text comment) in clear. What is kept of an event
-- is now the event as understood (docs/import.md): every raw that is not a
-- JSON object (the CSV rows; JSON lines always are objects) is rewritten
-- from the stored fields, the patient as its hash. Nothing reads raw back.
-- secure_delete zeroes the old cells, so the clear text does not linger in
-- the file's free space; store::migrate checkpoints the WAL afterwards.
PRAGMA secure_delete = ON;
UPDATE events SET raw = json_object(
    'id', id,
    'case', case_id,
    'type', event_type,
    'at', strftime('%Y-%m-%dT%H:%M:%SZ', at),
    'unit', unit,
    'to', json(to_units),
    'ref', ref_id,
    'value', value,
    'patient', CASE WHEN patient_hash IS NULL THEN NULL ELSE 'hmac:' || patient_hash END
) WHERE substr(ltrim(raw), 1, 1) <> '{';
