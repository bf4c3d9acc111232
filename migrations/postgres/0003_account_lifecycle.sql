-- Account lifecycle (issue 6): disabled accounts, a per-user session epoch, token expiry.
-- Kept column-for-column equal to ../sqlite/0003_account_lifecycle.sql.

-- When the account was disabled (ms), or NULL while it is enabled. A disabled user cannot
-- sign in, and their sessions and tokens are refused on every request.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
-- Every session stores the epoch it was signed in under; a password change or reset, or
-- disabling the account, bumps it, which signs out every session under the old epoch.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
-- When the token stops working (ms), or NULL for a token that does not expire.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
