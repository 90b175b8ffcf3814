-- The node's state. Files stay where they are on disk; this holds what they mean.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE spheres (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    -- The sphere's MUC room (bare JID).
    room          TEXT NOT NULL UNIQUE,
    -- Where its shares live on disk.
    folder        TEXT NOT NULL,
    -- 1 when this node created the sphere and runs its tracker.
    owned         INTEGER NOT NULL DEFAULT 0,
    -- What to download: 'all', 'none' (on demand) or 'max:BYTES'.
    policy        TEXT NOT NULL DEFAULT 'all',
    -- Our announce URL for the sphere's tracker (with our own key), once granted.
    announce      TEXT,
    -- The room archive id up to which announcements were processed.
    archive_after TEXT,
    created_at    INTEGER NOT NULL
);

-- Members of the spheres this node owns, with the tracker key each was given.
CREATE TABLE members (
    sphere_id   INTEGER NOT NULL REFERENCES spheres(id) ON DELETE CASCADE,
    jid         TEXT NOT NULL,
    tracker_key TEXT NOT NULL UNIQUE,
    PRIMARY KEY (sphere_id, jid)
);

CREATE TABLE shares (
    sphere_id  INTEGER NOT NULL REFERENCES spheres(id) ON DELETE CASCADE,
    info_hash  TEXT NOT NULL,
    name       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    files      INTEGER NOT NULL,
    media      TEXT NOT NULL,
    sharer     TEXT NOT NULL,
    magnet     TEXT NOT NULL,
    torrent    BLOB,
    -- The data's path on this machine (seeded in place, or downloaded there).
    path       TEXT,
    -- 'seeding', 'downloading', 'available' (not fetched by policy), 'withdrawn', 'failed'.
    state      TEXT NOT NULL,
    error      TEXT,
    shared_at  INTEGER NOT NULL,
    PRIMARY KEY (sphere_id, info_hash)
);

-- Invitations to spheres we received and have not answered.
CREATE TABLE invites (
    room        TEXT PRIMARY KEY,
    from_jid    TEXT NOT NULL,
    reason      TEXT,
    received_at INTEGER NOT NULL
);
