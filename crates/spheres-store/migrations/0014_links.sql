-- Links to a share (issue 16): whoever holds the URL, which carries `token` (unguessable),
-- reads the share from this node over HTTP, until it expires or is revoked. A revoked link
-- stays listed (and keeps answering "revoked") rather than becoming an unknown one.
CREATE TABLE links (
    token     TEXT PRIMARY KEY NOT NULL,
    sphere_id INTEGER NOT NULL REFERENCES spheres(id) ON DELETE CASCADE,
    info_hash TEXT NOT NULL,
    created   INTEGER NOT NULL,
    expires   INTEGER,
    revoked   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX links_by_share ON links (sphere_id, info_hash);
