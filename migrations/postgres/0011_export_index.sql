-- Why: finance's exports page through a week's invoices in (week, id) order; without this index
-- every page re-read and re-sorted the whole week (quadratic at a million invoices).
CREATE INDEX invoices_week_id ON invoices (week, id);
