//! Diesel table definitions shared by both backends.
//!
//! Written by hand to match `migrations/{sqlite,postgres}`; the SQL types are
//! chosen so that one definition reads and writes both databases (SQLite keeps
//! `Timestamp` as text, `Bool` as 0/1 and `BigInt` keys as its 64-bit rowid).

diesel::table! {
    devices (id) {
        id -> Text,
        oui -> Text,
        product_class -> Text,
        serial_number -> Text,
        manufacturer -> Text,
        root_object -> Text,
        software_version -> Nullable<Text>,
        hardware_version -> Nullable<Text>,
        connection_request_url -> Nullable<Text>,
        udp_connection_request_address -> Nullable<Text>,
        parameter_key -> Nullable<Text>,
        cwmp_ns -> Text,
        cwmp_version -> Text,
        last_inform_at -> Timestamp,
        last_remote_addr -> Nullable<Text>,
        last_current_time -> Nullable<Text>,
        last_retry_count -> Integer,
        first_seen_at -> Timestamp,
        bootstrap_epoch -> Integer,
        cpe_username -> Nullable<Text>,
        cpe_password -> Nullable<Text>,
        cr_username -> Nullable<Text>,
        cr_password -> Nullable<Text>,
        last_cr_at -> Nullable<Timestamp>,
        last_cr_result -> Nullable<Text>,
        cpe_ha1_md5 -> Nullable<Text>,
        cpe_ha1_sha256 -> Nullable<Text>,
        cpe_realm -> Nullable<Text>,
        tenant -> Nullable<Text>,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        device_id -> Text,
        received_at -> Timestamp,
        event_code -> Text,
        command_key -> Text,
        session_id -> Nullable<Text>,
    }
}

diesel::table! {
    parameters (device_id, path) {
        device_id -> Text,
        path -> Text,
        value -> Nullable<Text>,
        xsd_type -> Nullable<Text>,
        writable -> Nullable<Bool>,
        is_object -> Bool,
        fetched_at -> Timestamp,
    }
}

diesel::table! {
    tasks (id) {
        id -> BigInt,
        device_id -> Text,
        kind -> Text,
        args -> Text,
        status -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        attempts -> Integer,
        max_attempts -> Integer,
        command_key -> Nullable<Text>,
        result -> Nullable<Text>,
        fault_code -> Nullable<Integer>,
        fault_string -> Nullable<Text>,
        fault_detail -> Nullable<Text>,
        started_at -> Nullable<Timestamp>,
        completed_at -> Nullable<Timestamp>,
        session_id -> Nullable<Text>,
        lease_node -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        waiting_until -> Nullable<Timestamp>,
        upload_token -> Nullable<Text>,
        sent_key -> Nullable<Text>,
        acknowledged_at -> Nullable<Timestamp>,
        acknowledged_by -> Nullable<Text>,
    }
}

diesel::table! {
    files (id) {
        id -> Text,
        name -> Text,
        file_type -> Text,
        oui -> Text,
        product_class -> Text,
        version -> Text,
        size -> BigInt,
        sha256 -> Text,
        content_type -> Text,
        stored_path -> Text,
        device_id -> Nullable<Text>,
        task_id -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    ipdr_exporters (id) {
        id -> Text,
        direction -> Text,
        state -> Text,
        last_connected_at -> Nullable<Timestamp>,
        records_total -> BigInt,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    ipdr_sessions (exporter_id, session_id, document_id) {
        exporter_id -> Text,
        session_id -> Integer,
        document_id -> Text,
        config_id -> Integer,
        template -> Text,
        started_at -> Timestamp,
        stopped_at -> Nullable<Timestamp>,
        last_sequence -> Nullable<BigInt>,
        records -> BigInt,
    }
}

diesel::table! {
    ipdr_records (id) {
        id -> BigInt,
        exporter_id -> Text,
        session_id -> Integer,
        document_id -> Text,
        sequence -> BigInt,
        template_id -> Integer,
        received_at -> Timestamp,
        fields -> Text,
        device_id -> Nullable<Text>,
    }
}

diesel::table! {
    bulk_layouts (id) {
        id -> BigInt,
        paths -> Text,
    }
}

diesel::table! {
    bulk_reports (id) {
        id -> BigInt,
        device_id -> Nullable<Text>,
        sampled_at -> Timestamp,
        received_at -> Timestamp,
        layout_id -> BigInt,
        vals -> Text,
        suspect -> Bool,
        source -> Text,
        source_ref -> Nullable<Text>,
        stream_id -> Nullable<BigInt>,
        sequence -> Nullable<BigInt>,
    }
}

diesel::table! {
    ipdr_streams (id) {
        id -> BigInt,
        exporter_id -> Text,
        session_id -> Integer,
        document_id -> Text,
    }
}

diesel::table! {
    bulk_report_index (device_id, sampled_at, report_id) {
        device_id -> Text,
        sampled_at -> Timestamp,
        report_id -> BigInt,
    }
}

diesel::table! {
    bulk_index_state (id) {
        id -> Integer,
        indexed_upto -> BigInt,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
        description -> Text,
        permissions -> Text,
        scope -> Text,
        builtin -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    tenants (name) {
        name -> Text,
        rules -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (name) {
        name -> Text,
        password_hash -> Text,
        role -> Text,
        tenant -> Nullable<Text>,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        name -> Text,
        token_hash -> Text,
        prefix -> Text,
        role -> Text,
        tenant -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    web_sessions (id_hash) {
        id_hash -> Text,
        user_name -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        remote_addr -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> Timestamp,
        actor -> Text,
        remote_addr -> Nullable<Text>,
        action -> Text,
        target -> Text,
        devices -> Text,
        outcome -> Text,
        detail -> Text,
    }
}

diesel::table! {
    device_tags (device_id, tag) {
        device_id -> Text,
        tag -> Text,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        name -> Text,
        url -> Text,
        secret -> Text,
        events -> Text,
        scopes -> Text,
        tenant -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        enabled -> Bool,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        webhook_id -> Text,
        event_id -> Text,
        event_type -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(events -> devices (device_id));
diesel::joinable!(parameters -> devices (device_id));
diesel::joinable!(tasks -> devices (device_id));
diesel::joinable!(device_tags -> devices (device_id));

diesel::joinable!(ipdr_sessions -> ipdr_exporters (exporter_id));

diesel::allow_tables_to_appear_in_same_query!(
    devices,
    events,
    parameters,
    tasks,
    files,
    ipdr_exporters,
    ipdr_sessions,
    ipdr_records,
    bulk_layouts,
    bulk_reports,
    bulk_report_index,
    bulk_index_state,
    ipdr_streams,
    roles,
    tenants,
    users,
    api_tokens,
    web_sessions,
    audit_log,
    device_tags,
    webhooks,
    webhook_deliveries,
);
