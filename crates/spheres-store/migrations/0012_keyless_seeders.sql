-- Keyless seeders of encrypted spheres (docs/decisions/0016): an owner marks a member whose
-- node holds the sphere's ciphertext without its keys; that node's sphere is `holding`, as
-- its invitation said.
ALTER TABLE members ADD COLUMN seeder INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spheres ADD COLUMN holding INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invites ADD COLUMN holding INTEGER NOT NULL DEFAULT 0;
