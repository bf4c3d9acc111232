-- The audit trail (issue 7): every creation and change of an annotation, a project's settings or
-- members, and an account, appended in the same transaction as the change it records.
-- Kept column-for-column equal to ../postgres/0004_audit_log.sql.
--
-- Append-only: the triggers below refuse every UPDATE and DELETE, whoever runs them. No foreign
-- keys, on purpose: the log outlives what it describes, and a cascading delete of a project or
-- an item would otherwise have to delete (and so be refused by) its entries.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL, -- ms since the epoch, the time of the change
    actor_id    INTEGER,          -- who did it; NULL: the command line on the server's machine
    project_id  INTEGER,          -- NULL for account changes
    item_id     INTEGER,          -- the item, for annotation entries
    user_id     INTEGER,          -- the user the entry is about (account, member, labeler)
    action      TEXT NOT NULL,    -- app::api_types::AuditAction
    before_json TEXT,             -- JSON: the changed fields before (NULL for a creation)
    after_json  TEXT              -- JSON: the changed fields after
);
-- An item's history, and a project's log read in id order (keyset paging).
CREATE INDEX audit_log_item ON audit_log(item_id, id);
CREATE INDEX audit_log_project ON audit_log(project_id, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be updated');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be deleted');
END;
