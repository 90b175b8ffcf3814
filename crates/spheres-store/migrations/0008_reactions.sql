-- A reaction to a post (XEP-0444 emojis in a comment, or Movim's "♥"): the emojis, as a JSON
-- array; NULL for a comment that says something.
ALTER TABLE comments ADD COLUMN reactions TEXT;
