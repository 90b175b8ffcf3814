-- Posts for a sphere's members travel in its room: `service` is the room, `sphere_id` the
-- sphere (its posts go when we leave it).
ALTER TABLE posts ADD COLUMN sphere_id INTEGER REFERENCES spheres(id) ON DELETE CASCADE;
CREATE INDEX posts_by_sphere ON posts (sphere_id) WHERE sphere_id IS NOT NULL;
