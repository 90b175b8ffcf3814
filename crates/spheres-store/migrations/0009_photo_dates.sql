-- When each photo of a sphere was taken (EXIF), read once from its file: NULL when it says
-- nothing. Goes with its sphere.
CREATE TABLE photo_dates (
    sphere_id  INTEGER NOT NULL REFERENCES spheres(id) ON DELETE CASCADE,
    info_hash  TEXT NOT NULL,
    file_index INTEGER NOT NULL,
    taken      INTEGER,
    PRIMARY KEY (sphere_id, info_hash, file_index)
);
