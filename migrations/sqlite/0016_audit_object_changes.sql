-- Why: an invoice's page lists what happened to it, newest first, without the lookups (every
-- view of a person's data is audited, so a much-viewed invoice has more views than changes).
-- Through the index of all of an object's entries, each view was read and skipped, and the
-- newest hundred entries could all be views, leaving the page's list empty. This index holds
-- no lookup; the query says the same condition (`NOT_A_LOOKUP` in server/src/db/audit.rs), or
-- the database would not use it.
CREATE INDEX audit_log_object_changes ON audit_log (object_type, object_id, id)
    WHERE action NOT IN ('invoice.view', 'user.search', 'user.view');
