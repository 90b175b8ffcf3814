-- Our announcements the room has not confirmed yet (its copy of our own message has not come
-- back): sent again after a crash, a restart or time offline, until it does.
CREATE TABLE outbox (
    sphere_id INTEGER NOT NULL REFERENCES spheres(id) ON DELETE CASCADE,
    info_hash TEXT NOT NULL,
    created   INTEGER NOT NULL,
    PRIMARY KEY (sphere_id, info_hash)
);
