-- A sealed share (an encrypted sphere's, docs/decisions/0015): its key and real files, as the
-- `<sealed/>` element of its announcement. NULL for a share in clear.
ALTER TABLE shares ADD COLUMN sealed TEXT;
