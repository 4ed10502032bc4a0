-- Idempotency keys are scoped per caller across routes (issue 14, bug 6; Stripe's rule): a
-- purchase's key reused by the same staff account for a top-up ran both. `scope` was
-- "<sub>:<METHOD> <path>"; it is now "<sub>", and the route is part of `request_hash`
-- (`wallet.kernel.idempotency.key_for`), so the same key on another route is a 409.
--
-- Stored responses keep replaying across the change. Where one caller used one key on several
-- routes, the latest record is kept: a retry of an older request then gets a 409 (its request
-- differs from the kept one), never a second run.
DELETE FROM idempotency_keys k
 USING idempotency_keys newer
 WHERE position(':' IN k.scope) > 0 AND position(':' IN newer.scope) > 0
   AND split_part(k.scope, ':', 1) = split_part(newer.scope, ':', 1)
   AND k.key = newer.key AND k.scope <> newer.scope
   AND (newer.created_at, newer.scope) > (k.created_at, k.scope);

UPDATE idempotency_keys SET scope = split_part(scope, ':', 1) WHERE position(':' IN scope) > 0;

COMMENT ON COLUMN idempotency_keys.scope IS
    'the caller (token sub) that sent the key: one key names one request of its sender';
