// @generated automatically by Diesel CLI.

diesel::table! {
    events (session_key, seq) {
        session_key -> BigInt,
        seq -> BigInt,
        event_id -> Nullable<Text>,
        dedup_key -> Text,
        event_type -> Text,
        occurred_at_us -> BigInt,
        received_at -> BigInt,
        interaction_id -> Nullable<Text>,
        sequence -> Nullable<BigInt>,
        out_of_order -> Bool,
        data -> Text,
    }
}

diesel::table! {
    /// One row per event for search and the activity view (no primary key in the database;
    /// (session_key, seq) is unique through `events`).
    event_search (session_key, seq) {
        scope -> Text,
        session_key -> BigInt,
        seq -> BigInt,
        received_at -> BigInt,
        event_type -> Text,
        tool -> Nullable<Text>,
        words -> Text,
    }
}

diesel::table! {
    interactions (scope, session_id, interaction_id) {
        scope -> Text,
        session_id -> Text,
        interaction_id -> Text,
        kind -> Text,
        payload -> Text,
        status -> Text,
        outcome -> Nullable<Text>,
        result -> Nullable<Text>,
        completed_by -> Nullable<Text>,
        position -> BigInt,
        created_at -> BigInt,
        timeout_ms -> BigInt,
        deadline -> Nullable<BigInt>,
        completed_at -> Nullable<BigInt>,
        event_count -> BigInt,
        decided_by -> Nullable<Text>,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        scope -> Text,
        session_id -> Text,
        kind -> Text,
        at -> BigInt,
        body -> Text,
    }
}

diesel::table! {
    sessions (scope, session_id) {
        scope -> Text,
        session_id -> Text,
        status -> Text,
        external_conversation_id -> Nullable<Text>,
        metadata -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        event_count -> BigInt,
        last_seq -> BigInt,
        interactions_pending -> BigInt,
        interactions_completed -> BigInt,
        interactions_timed_out -> BigInt,
        interactions_cancelled -> BigInt,
        session_key -> BigInt,
        facts -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    event_search,
    events,
    interactions,
    notifications,
    sessions,
);
