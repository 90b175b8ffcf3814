-- What guards a link besides its token (issue 16): a password (an Argon2 PHC string; none:
-- no password), how many browsers may open it (none: any number) and how many did, and the
-- key the node signs a visitor's pass with (a cookie scoped to the link that proves the
-- visitor gave the password or was counted; it changes nothing in the store per visitor).
ALTER TABLE links ADD COLUMN password TEXT;
ALTER TABLE links ADD COLUMN max_opens INTEGER;
ALTER TABLE links ADD COLUMN opens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN secret BLOB NOT NULL DEFAULT x'';
UPDATE links SET secret = randomblob(32);
