-- +goose Up
-- Who changed each key, kept with its value: the browser (user) whose
-- request made the change, the number of its tab ("Tab 3"), and whether it
-- came through the JSON API. Rows from before know none of it ('' user).
ALTER TABLE entries ADD COLUMN origin_user TEXT NOT NULL DEFAULT '';
ALTER TABLE entries ADD COLUMN origin_tab INTEGER NOT NULL DEFAULT 0;
ALTER TABLE entries ADD COLUMN origin_api INTEGER NOT NULL DEFAULT 0;

-- Every tab of a user has a number, given in the order the tabs appeared
-- and never given again while the user exists: tabs_made counts them.
ALTER TABLE users ADD COLUMN tabs_made INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tabs ADD COLUMN number INTEGER NOT NULL DEFAULT 0;
UPDATE tabs SET number = (
    SELECT count(*) FROM tabs AS earlier
    WHERE earlier.user_id = tabs.user_id
      AND (earlier.created_at < tabs.created_at
           OR (earlier.created_at = tabs.created_at AND earlier.tab_id <= tabs.tab_id)));
UPDATE users SET tabs_made = (SELECT count(*) FROM tabs WHERE tabs.user_id = users.id);

-- +goose Down
ALTER TABLE tabs DROP COLUMN number;
ALTER TABLE users DROP COLUMN tabs_made;
ALTER TABLE entries DROP COLUMN origin_api;
ALTER TABLE entries DROP COLUMN origin_tab;
ALTER TABLE entries DROP COLUMN origin_user;
