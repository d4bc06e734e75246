-- Why: a draft's lines and an approval's billed rides are written from rows just read or just
-- inserted, by one function each, and at a million passengers they are about 14 million rows
-- (5.5 million invoice lines, 4.2 million payout lines, 4.2 million billed rides). Each foreign
-- key ran a trigger per row that looked its parent up and locked it, and the index of invoice
-- lines by ride was one more B-tree written at random places: together most of storing a week.
-- The rows are now kept by their primary keys alone:
--   - lines name their ride, invoice or payout without a foreign key: rides are never deleted, a
--     line's invoice or payout is inserted in the same transaction, and replacing a draft deletes
--     its lines itself before its invoices and payouts (`Db::store_preview`);
--   - `billed_rides` keeps what bills a ride once, its primary key, without the foreign keys to
--     the ride and the week (the approval writes them from the week's lines, in its transaction);
--   - invoice lines are no longer indexed by ride: a customer's ride finds its line through the
--     customer's invoices (`invoices_user`) and the line's primary key.
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_ride_id_fkey;
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_invoice_id_fkey;
ALTER TABLE payout_lines DROP CONSTRAINT payout_lines_ride_id_fkey;
ALTER TABLE payout_lines DROP CONSTRAINT payout_lines_payout_id_fkey;
ALTER TABLE billed_rides DROP CONSTRAINT billed_rides_ride_id_fkey;
ALTER TABLE billed_rides DROP CONSTRAINT billed_rides_week_fkey;
DROP INDEX invoice_lines_ride;
