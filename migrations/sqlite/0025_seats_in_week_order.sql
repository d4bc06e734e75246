-- Why: a week's draft reads every ride that ended in the week with its seats, 4.2 million rides
-- and 5.5 million seats at a million passengers. Rides were found through their end time's index
-- and then each read at its own place in the table, and each ride's seats at their own place in
-- the seats' table: three random page reads a ride, most of computing a draft on SQLite. Now
-- the week is read in order, page after page:
--   - the index of rides by end time carries what the draft reads of a ride (its id, driver,
--     distance and start), so the ride itself is not looked up;
--   - a seat carries its ride's end time (a ride never changes once stored: a different ride
--     under its id is refused), and the seats are kept in the order (end time, ride, passenger),
--     so a week's seats lie together, each ride's beside the next. A seat is still one per ride
--     and passenger (`ride_seats_ride`) and found by passenger (`ride_seats_passenger`).
PRAGMA defer_foreign_keys = ON;

CREATE TABLE ride_seats_rebuilt (
    ended_at     TEXT NOT NULL,
    ride_id      TEXT NOT NULL REFERENCES rides (ride_id),
    passenger_id TEXT NOT NULL REFERENCES users (id),
    attendance   TEXT NOT NULL CHECK (attendance IN ('completed', 'cancelled', 'no_show')),
    PRIMARY KEY (ended_at, ride_id, passenger_id)
) STRICT, WITHOUT ROWID;
INSERT INTO ride_seats_rebuilt (ended_at, ride_id, passenger_id, attendance)
    SELECT r.ended_at, s.ride_id, s.passenger_id, s.attendance FROM ride_seats s JOIN rides r ON r.ride_id = s.ride_id;
DROP TABLE ride_seats;
ALTER TABLE ride_seats_rebuilt RENAME TO ride_seats;
CREATE UNIQUE INDEX ride_seats_ride ON ride_seats (ride_id, passenger_id);
CREATE INDEX ride_seats_passenger ON ride_seats (passenger_id);

DROP INDEX rides_ended_at;
CREATE INDEX rides_ended_at ON rides (ended_at, ride_id, driver_id, distance_m, started_at);
