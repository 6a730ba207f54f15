-- +goose Up
-- The expiry sweep finds one-shot visitors (the cookie never came back)
-- by their creation time.
CREATE INDEX users_one_shot ON users (returned, created_at);

-- +goose Down
DROP INDEX users_one_shot;
