-- What was said in each sphere's room (bodies of groupchat messages, ours included).
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY,
    sphere_id  INTEGER NOT NULL REFERENCES spheres(id) ON DELETE CASCADE,
    -- The room's archive id (XEP-0359 stanza-id): the same message seen live and in the
    -- archive is kept once.
    archive_id TEXT,
    nick       TEXT NOT NULL,
    jid        TEXT,
    body       TEXT NOT NULL,
    stamp      INTEGER NOT NULL,
    UNIQUE (sphere_id, archive_id)
);
CREATE INDEX messages_by_sphere ON messages (sphere_id, id);
