-- Refunds across stores (issue 14, bug 8): most chains take returns at any of their stores, so
-- it stays allowed by default, but it is now the program's choice. A refund is recorded at the
-- store that gives the money back (its transaction and ledger entries carry that store; the
-- purchase it refunds is `original_transaction_id`), and the till's read of a purchase rung
-- up at another store is logged as such in the member's access log
-- (`till.refund_other_store`).
ALTER TABLE programs ADD COLUMN cross_store_refunds boolean NOT NULL DEFAULT true;

COMMENT ON COLUMN programs.cross_store_refunds IS
    'a purchase may be refunded at another store of the program than the one that rang it up';
