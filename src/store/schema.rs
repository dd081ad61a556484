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
        chef_email -> Nullable<Text>,
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
        earliest_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        patient_hash -> Nullable<Text>,
        first_at -> Timestamp,
        last_at -> Timestamp,
        changed_at -> Timestamp,
        next_check -> Nullable<Timestamp>,
        age_band -> Nullable<Text>,
        summary_hash -> Nullable<Text>,
        findings_hash -> Nullable<Text>,
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
        kommun -> Nullable<Text>,
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
        token_id -> Nullable<BigInt>,
        user_id -> Nullable<BigInt>,
        actor -> Text,
        role -> Text,
        action -> Text,
        object -> Text,
    }
}

diesel::joinable!(events -> ingest_batches (batch_id));
diesel::allow_tables_to_appear_in_same_query!(units, ingest_batches, cases, events, api_tokens, access_log);

diesel::table! {
    scan_runs (id) {
        id -> BigInt,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        as_of -> Timestamp,
        full_scan -> Bool,
        backfill -> Bool,
        cases_evaluated -> Integer,
        findings -> Integer,
        filed -> Integer,
        updated -> Integer,
        withdrawn -> Integer,
        errors -> Integer,
        error_text -> Nullable<Text>,
        status -> Text,
        unmailed -> Integer,
        days_owed -> Bool,
    }
}

diesel::table! {
    scan_lock (id) {
        id -> Integer,
        holder -> Nullable<Text>,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    deviations (id) {
        id -> BigInt,
        fingerprint -> Text,
        rule -> Text,
        case_id -> Nullable<Text>,
        unit -> Nullable<Text>,
        due -> Timestamp,
        finding_status -> Text,
        done_at -> Nullable<Timestamp>,
        late_minutes -> Nullable<BigInt>,
        status -> Text,
        sannolikhet -> Integer,
        konsekvens -> Integer,
        recipients -> Text,
        queued_at -> Nullable<Timestamp>,
        scan_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    deviation_history (id) {
        id -> BigInt,
        deviation_id -> BigInt,
        at -> Timestamp,
        actor -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        message_id -> Text,
        kind -> Text,
        deviation_ids -> Text,
        recipients -> Text,
        payload -> Nullable<Text>,
        in_reply_to -> Nullable<Text>,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        cancelled_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        channel -> Text,
    }
}

diesel::joinable!(deviation_history -> deviations (deviation_id));
diesel::table! {
    deviation_parties (deviation_id, unit) {
        deviation_id -> BigInt,
        unit -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(deviations, deviation_history, outbox, scan_runs, cases);
diesel::allow_tables_to_appear_in_same_query!(deviations, deviation_parties);

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        email -> Nullable<Text>,
        failed_logins -> Integer,
        locked_until -> Nullable<Timestamp>,
        disabled_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        hsa_id -> Nullable<Text>,
    }
}

diesel::table! {
    user_units (user_id, unit_id) {
        user_id -> BigInt,
        unit_id -> Text,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> BigInt,
        csrf -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    deviation_handling (deviation_id) {
        deviation_id -> BigInt,
        assigned_to -> Nullable<BigInt>,
        atgard -> Nullable<Text>,
        reason -> Nullable<Text>,
        changed_at -> Timestamp,
        reminded_at -> Nullable<Timestamp>,
        escalated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    deviation_comments (id) {
        id -> BigInt,
        deviation_id -> BigInt,
        at -> Timestamp,
        actor -> Text,
        text -> Text,
    }
}

diesel::table! {
    oidc_logins (state_hash) {
        state_hash -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        next -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(user_units -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, user_units, sessions);
diesel::allow_tables_to_appear_in_same_query!(deviations, deviation_handling, deviation_comments);

diesel::table! {
    obligations (id) {
        id -> BigInt,
        case_id -> Text,
        rule -> Text,
        unit -> Nullable<Text>,
        due -> Timestamp,
        outcome -> Text,
        done_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    case_facts (case_id) {
        case_id -> Text,
        kommuner -> Text,
        patient_hash -> Nullable<Text>,
        age_band -> Nullable<Text>,
        inskrivning_at -> Nullable<Timestamp>,
        uk_at -> Nullable<Timestamp>,
        dag0 -> Nullable<Text>,
        utskrivning_at -> Nullable<Timestamp>,
        utskrivning_date -> Nullable<Text>,
        avslut_date -> Nullable<Text>,
        im_in_time -> Nullable<Bool>,
        sip_needed -> Bool,
        kallelse_in_time -> Nullable<Bool>,
        judged -> Text,
        kommun -> Nullable<Text>,
    }
}

diesel::table! {
    obligation_days (day, rule, unit) {
        day -> Text,
        rule -> Text,
        unit -> Text,
        met -> BigInt,
        late -> BigInt,
        missing -> BigInt,
    }
}

diesel::table! {
    staffing_reminders (unit_id, day) {
        unit_id -> Text,
        day -> Text,
        queued_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(obligations, case_facts);

diesel::table! {
    feed_files (id) {
        id -> BigInt,
        content_hash -> Text,
        name -> Text,
        bytes -> BigInt,
        received_at -> Timestamp,
        outcome -> Text,
        events_received -> BigInt,
        events_stored -> BigInt,
        duplicates -> BigInt,
        errors -> BigInt,
        moved_to -> Text,
    }
}

diesel::table! {
    unknown_logins (name_hash) {
        name_hash -> Text,
        failed -> Integer,
        touched -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    case_timelines (case_id) {
        case_id -> Text,
        packed -> Binary,
    }
}

diesel::allow_tables_to_appear_in_same_query!(cases, case_timelines);

diesel::table! {
    unit_days (unit, day) {
        unit -> Text,
        day -> Text,
        first_at -> Timestamp,
        bemanning_at -> Nullable<Timestamp>,
        morning_at -> Nullable<Timestamp>,
        afternoon_at -> Nullable<Timestamp>,
        changed_at -> Nullable<Timestamp>,
    }
}
