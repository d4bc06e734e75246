-- Why: while charging, the run's coordinator checks the latest few charges against the provider
-- every five seconds. Finding them sorted every charge of the run by when it succeeded: at a
-- million invoices, a scan of the whole run every five seconds, inside the look that runs the
-- guards. With this index the latest successes are read newest first and the look stops at the
-- few it needs.
CREATE INDEX charge_attempts_succeeded_at ON charge_attempts (finished_at) WHERE outcome = 'succeeded';
