-- Why: a week's page showed how many of its invoices are flagged by counting them on every view:
-- at a million passengers with one in ten flagged, a hundred thousand index entries per page. The
-- number is fixed when the preview is stored, so it is stored with the week's other totals.
ALTER TABLE weeks ADD COLUMN flagged BIGINT NOT NULL DEFAULT 0 CHECK (flagged >= 0);
UPDATE weeks SET flagged = (SELECT COUNT(*) FROM invoices i WHERE i.week = weeks.week AND i.flagged = TRUE);
