-- Grants and field rules may name the audit trail.
ALTER TABLE role_grants DROP CONSTRAINT IF EXISTS role_grants_resource_check;
ALTER TABLE role_grants ADD CONSTRAINT role_grants_resource_check
    CHECK (resource IN ('account', 'contact', 'lead', 'opportunity', 'contract', 'ticket', 'audit'));
ALTER TABLE role_field_rules DROP CONSTRAINT IF EXISTS role_field_rules_resource_check;
ALTER TABLE role_field_rules ADD CONSTRAINT role_field_rules_resource_check
    CHECK (resource IN ('account', 'contact', 'lead', 'opportunity', 'contract', 'ticket', 'audit'));

-- The audit trail: one row per event (its id), made by the audit consumer and never changed.
CREATE TABLE audit_entries (
    id             UUID PRIMARY KEY,
    occurred_at    TIMESTAMPTZ NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    event_type     TEXT NOT NULL,
    source         TEXT NOT NULL,
    resource       TEXT NOT NULL,
    record_id      TEXT,
    action         TEXT NOT NULL,
    actor_user_id  UUID,
    api_client_id  TEXT,
    client_ip      TEXT,
    user_agent     TEXT,
    trace_id       TEXT,
    changes        JSONB NOT NULL DEFAULT '{}',
    details        JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_entries_time ON audit_entries (occurred_at DESC, id DESC);
CREATE INDEX audit_entries_record ON audit_entries (record_id, occurred_at DESC, id DESC);
CREATE INDEX audit_entries_actor ON audit_entries (actor_user_id, occurred_at DESC, id DESC);

-- Append-only, whatever the application does: updates and deletes fail. (Retention, when it
-- comes, drops whole partitions as the table owner, not rows.)
CREATE FUNCTION audit_entries_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only();
