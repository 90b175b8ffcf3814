-- Browser sessions of the web interface. Only a hash of each cookie is kept: the database
-- alone opens no session. Sessions end after a time idle and at an absolute age, and all end
-- when the web password changes.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    created    INTEGER NOT NULL,
    last_used  INTEGER NOT NULL
);
