-- The audit trail (issue 7): every creation and change of an annotation, a project's settings or
-- members, and an account, appended in the same transaction as the change it records.
-- Kept column-for-column equal to ../sqlite/0004_audit_log.sql.
--
-- Append-only: the trigger below refuses every UPDATE, DELETE and TRUNCATE, whoever runs them.
-- No foreign keys, on purpose: the log outlives what it describes, and a cascading delete of a
-- project or an item would otherwise have to delete (and so be refused by) its entries.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL, -- ms since the epoch, the time of the change
    actor_id    BIGINT,          -- who did it; NULL: the command line on the server's machine
    project_id  BIGINT,          -- NULL for account changes
    item_id     BIGINT,          -- the item, for annotation entries
    user_id     BIGINT,          -- the user the entry is about (account, member, labeler)
    action      TEXT NOT NULL,   -- app::api_types::AuditAction
    before_json TEXT,            -- JSON: the changed fields before (NULL for a creation)
    after_json  TEXT             -- JSON: the changed fields after
);
-- An item's history, and a project's log read in id order (keyset paging).
CREATE INDEX audit_log_item ON audit_log(item_id, id);
CREATE INDEX audit_log_project ON audit_log(project_id, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$;

CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
