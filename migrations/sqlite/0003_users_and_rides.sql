-- Why: rides arrive from the carpool app and are billed exactly once; each ride id is stored once
-- (the primary key), with a hash of its content so a resend is recognised and a different ride
-- under the same id is refused. Passengers and drivers are users known to the product.
CREATE TABLE users (
    id         TEXT PRIMARY KEY NOT NULL CHECK (length(id) BETWEEN 1 AND 100),
    name       TEXT NOT NULL,
    email      TEXT,
    phone      TEXT,
    language   TEXT NOT NULL DEFAULT 'en',
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE rides (
    ride_id      TEXT PRIMARY KEY NOT NULL CHECK (length(ride_id) BETWEEN 1 AND 100),
    driver_id    TEXT NOT NULL REFERENCES users (id),
    distance_m   INTEGER NOT NULL CHECK (distance_m BETWEEN 0 AND 2000000),
    started_at   TEXT NOT NULL,
    ended_at     TEXT NOT NULL CHECK (ended_at >= started_at),
    content_hash TEXT NOT NULL,
    received_at  TEXT NOT NULL
) STRICT;
CREATE INDEX rides_ended_at ON rides (ended_at);
CREATE INDEX rides_driver ON rides (driver_id, ended_at);

CREATE TABLE ride_seats (
    ride_id      TEXT NOT NULL REFERENCES rides (ride_id),
    passenger_id TEXT NOT NULL REFERENCES users (id),
    attendance   TEXT NOT NULL CHECK (attendance IN ('completed', 'cancelled', 'no_show')),
    PRIMARY KEY (ride_id, passenger_id)
) STRICT;
CREATE INDEX ride_seats_passenger ON ride_seats (passenger_id);
