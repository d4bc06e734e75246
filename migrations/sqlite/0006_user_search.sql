-- Why: support finds a customer in seconds by name, email, phone or id, by prefix and ignoring
-- case, at a million users: each is an indexed key the server normalises the same way (the
-- name's key came with 0004; here the email in lowercase and the phone as its digits).
ALTER TABLE users ADD COLUMN email_key TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone_key TEXT NOT NULL DEFAULT '';
UPDATE users SET email_key = lower(coalesce(email, '')),
    phone_key = replace(replace(replace(replace(replace(coalesce(phone, ''), '+', ''), ' ', ''), '-', ''), '(', ''), ')', '');
CREATE INDEX users_email_key ON users (email_key);
CREATE INDEX users_phone_key ON users (phone_key);
