-- Why: at a million invoices two scans grew with the work already done.
-- A worker's claim looked for due rows of a run in seq order through (run_id, seq), stepping over
-- every row already charged or paid: these partial indexes hold only the rows still due.
CREATE INDEX charges_due ON charges (run_id, seq) WHERE state IN ('pending', 'declined');
CREATE INDEX transfers_due ON transfers (run_id, seq) WHERE state = 'pending';
-- Finance's exports page through a week's invoices in id order; without this index every page
-- re-read and re-sorted the whole week.
CREATE INDEX invoices_week_id ON invoices (week, id);
