-- +goose Up
-- One row per stored key. scope is 'general', 'user' or 'tab'; user_id and
-- tab_id are '' where the scope does not use them, so that the primary key
-- serves every per-owner query (list, clear, count) as a range scan.
CREATE TABLE entries (
    scope      TEXT    NOT NULL CHECK (scope IN ('general', 'user', 'tab')),
    user_id    TEXT    NOT NULL,
    tab_id     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL CHECK (json_valid(value)),
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL, -- unix milliseconds
    PRIMARY KEY (scope, user_id, tab_id, key)
) WITHOUT ROWID;

-- A user exists from its first write. seen_at is refreshed at most once per
-- touch interval, so that reads do not turn into writes; returned says the
-- cookie came back at least once (one-shot visitors expire sooner).
CREATE TABLE users (
    id         TEXT    NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL,
    returned   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX users_seen_at ON users (seen_at);

-- A tab exists from its first write; it belongs to one user.
CREATE TABLE tabs (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tab_id     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, tab_id)
) WITHOUT ROWID;
CREATE INDEX tabs_seen_at ON tabs (seen_at);

-- Server-wide settings: the generated secret, the boot counter, the version
-- sequence.
CREATE TABLE settings (
    name  TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- +goose Down
DROP TABLE settings;
DROP TABLE tabs;
DROP TABLE users;
DROP TABLE entries;
