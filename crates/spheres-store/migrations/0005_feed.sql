-- The feed (XEP-0277): posts of ours and of the people we follow, and comments under them.
-- A cache of what their accounts publish: it can always be fetched again.
CREATE TABLE posts (
    id            INTEGER PRIMARY KEY,
    -- Whose account holds it, and its item id there.
    service       TEXT NOT NULL,
    item_id       TEXT NOT NULL,
    author        TEXT NOT NULL,
    author_name   TEXT,
    -- contacts | everyone | public
    audience      TEXT NOT NULL,
    title         TEXT NOT NULL,
    content       TEXT NOT NULL,
    -- Its comments node on the service's account, when it has one.
    comments_node TEXT,
    published     INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    UNIQUE (service, item_id)
);
CREATE INDEX posts_by_time ON posts (published DESC, id DESC);

CREATE TABLE comments (
    id          INTEGER PRIMARY KEY,
    post_id     INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    item_id     TEXT NOT NULL,
    -- Who published it: the server's word when `verified`, else what the comment claims
    -- (servers such as Prosody leave the publisher out of answers to a fetch).
    author      TEXT NOT NULL,
    verified    INTEGER NOT NULL,
    author_name TEXT,
    content     TEXT NOT NULL,
    published   INTEGER NOT NULL,
    UNIQUE (post_id, item_id)
);
CREATE INDEX comments_by_post ON comments (post_id, published);
