-- What this node read or wrote in encrypted one-to-one conversations: an MLS message opens
-- once, so its plaintext is kept here, keyed by the conversation, the message's id as its
-- sender gave it, and whether it is ours (the archive shows the ciphertext).
CREATE TABLE chat_lines (
    with_jid TEXT NOT NULL,
    msg_id   TEXT NOT NULL,
    mine     INTEGER NOT NULL,
    body     TEXT NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (with_jid, msg_id, mine)
);
