-- The console and the browser till.
-- A store's recent transactions, newest first (GET /v1/pos/stores/{store_id}/transactions).
CREATE INDEX transactions_store_at ON transactions (store_id, at DESC, id DESC);
-- Browser sign-in finds operator accounts by e-mail across programs (no program id to type).
CREATE INDEX accounts_email ON accounts (lower(email));
