-- A link whose maker chose "HTTP only" (`spheres link create --no-p2p`): its viewers get
-- everything from the node and never meet each other (no torrent, tracker or web seed).
ALTER TABLE links ADD COLUMN direct INTEGER NOT NULL DEFAULT 0;
