-- Why: a seat carries its ride's end time (a ride never changes once stored: a different ride
-- under its id is refused), so a week's seats can be read in the week's order beside their rides.
-- On SQLite the seats are kept in that order and the index of rides by end time carries what a
-- draft reads of a ride (see the SQLite migration of the same name); PostgreSQL reads a week's
-- rides and seats with a hash join and keeps its indexes as they were.
ALTER TABLE ride_seats ADD COLUMN ended_at TIMESTAMPTZ;
UPDATE ride_seats s SET ended_at = r.ended_at FROM rides r WHERE r.ride_id = s.ride_id;
ALTER TABLE ride_seats ALTER COLUMN ended_at SET NOT NULL;
