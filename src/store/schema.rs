//! The portable schema, written by hand (STACK-NOTES: one schema for both
//! backends). Instants are `Timestamp` holding UTC.

diesel::table! {
    units (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        huvudman -> Text,
        parent -> Nullable<Text>,
        email -> Nullable<Text>,
        storhelg -> Bool,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    ingest_batches (id) {
        id -> BigInt,
        received_at -> Timestamp,
        source -> Text,
        lines -> Integer,
        stored -> Integer,
        duplicates -> Integer,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        patient_hash -> Nullable<Text>,
        first_at -> Timestamp,
        last_at -> Timestamp,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        case_id -> Nullable<Text>,
        event_type -> Text,
        at -> Timestamp,
        at_offset -> Integer,
        unit -> Text,
        to_units -> Text,
        ref_id -> Nullable<Text>,
        value -> Nullable<Text>,
        patient_hash -> Nullable<Text>,
        content_hash -> Text,
        raw -> Text,
        batch_id -> BigInt,
        received_at -> Timestamp,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        role -> Text,
        unit -> Nullable<Text>,
        label -> Nullable<Text>,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    access_log (id) {
        id -> BigInt,
        at -> Timestamp,
        token_id -> BigInt,
        role -> Text,
        action -> Text,
        object -> Text,
    }
}

diesel::joinable!(events -> ingest_batches (batch_id));
diesel::allow_tables_to_appear_in_same_query!(units, ingest_batches, cases, events, api_tokens, access_log);
