-- Money kept safe and proof that points at a text: stored-value payouts, the reason an
-- operator gives for acting on a member's request, and the published privacy notices.

-- Payouts: stored value handed back to the member (cash at a till, or by the operator, e.g.
-- a bank transfer before an erasure). A transaction of kind 'payout' and one
-- 'stored_value_payout' ledger entry, like any other operation. An operator's payout is rung
-- up at no store: `store_id` may be NULL for payouts only. `reference` says how it was paid
-- (a bank transfer's or a ticket's reference); it stays with the books after an erasure, so
-- it is a short code, not free text.
ALTER TABLE transactions ALTER COLUMN store_id DROP NOT NULL;
ALTER TABLE transactions
    ADD COLUMN reference text CHECK (reference ~ '^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,99}$'),
    ADD CONSTRAINT transactions_store CHECK (store_id IS NOT NULL OR kind = 'payout');

-- New kinds, added to whatever the CHECKs allow by now (another migration may add its own:
-- keep them, add ours). The constraints are rebuilt as `IN ('a', 'b', ...)`.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT array_agg(DISTINCT v[1] ORDER BY v[1]) INTO allowed
      FROM pg_constraint c,
           regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS v
     WHERE c.conrelid = 'transactions'::regclass AND c.conname = 'transactions_kind_check';
    allowed := allowed || ARRAY['payout'];
    ALTER TABLE transactions DROP CONSTRAINT transactions_kind_check;
    EXECUTE format('ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check '
                   'CHECK (kind IN (%s))',
                   (SELECT string_agg(DISTINCT quote_literal(k), ', ') FROM unnest(allowed) AS k));

    SELECT array_agg(DISTINCT v[1] ORDER BY v[1]) INTO allowed
      FROM pg_constraint c,
           regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS v
     WHERE c.conrelid = 'ledger_entries'::regclass AND c.conname = 'ledger_entries_kind_check';
    allowed := allowed || ARRAY['stored_value_payout'];
    ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
    EXECUTE format('ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check '
                   'CHECK (kind IN (%s))',
                   (SELECT string_agg(DISTINCT quote_literal(k), ', ') FROM unnest(allowed) AS k));
END $$;

ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_payout_sign CHECK (
    kind <> 'stored_value_payout' OR (stored_value < 0 AND points = 0));

-- Why an operator acted on a member's request (an erasure, a payout): the request's
-- reference ("ticket 4411"), kept with the access-log entry and purged with it. The entry
-- outlives the member's erasure, so it is a reference, not free text: no '@' or '+' (no
-- e-mail address or phone number fits), bounded.
ALTER TABLE access_log
    ADD COLUMN reason text CHECK (reason ~ '^[A-Za-z0-9][A-Za-z0-9 ._:/#()-]{0,199}$');

-- Every version of the privacy notice that was ever served, with its full text: a consent's
-- `policy_version` must name one of them, so the proof of consent points at the text the
-- member saw. Rows are never changed or deleted (the notice is generated from the running
-- configuration; a change of configuration that changes the text publishes a new version).
CREATE TABLE privacy_notices (
    version       text PRIMARY KEY CHECK (version ~ '^[0-9a-f]{16}$'),
    published_at  timestamptz NOT NULL DEFAULT now(),
    notice        jsonb NOT NULL
);
