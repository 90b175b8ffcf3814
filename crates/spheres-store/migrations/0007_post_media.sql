-- What a post carries: the shares (photos, videos, folders) it links to, as a JSON array of
-- {"info_hash","name","size","kind"}, as its entry names them.
ALTER TABLE posts ADD COLUMN media TEXT NOT NULL DEFAULT '[]';
