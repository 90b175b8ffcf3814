-- Encrypted spheres: the sphere's payloads travel as MLS messages of its group (see
-- docs/decisions/0014). 0 for the clear protocol, which every sphere made before spoke.
ALTER TABLE spheres ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
-- An invitation says whether its sphere is encrypted (the joining node must never speak
-- in clear there, even before it is in the group).
ALTER TABLE invites ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;

-- This node's MLS device: its keys and the state of every group it is in, as one snapshot
-- (spheres_mls::Device::snapshot), written after each change. One row.
CREATE TABLE mls_state (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    state BLOB NOT NULL
);
