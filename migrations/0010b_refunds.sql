-- Refunds are counted in what was paid (amount - discount), and a purchase nothing was paid
-- for (a free product voucher, a 100% offer) is refunded whole, once: whether it already has
-- a refund is read through this index (the refunds of a purchase).
CREATE INDEX transactions_refunds ON transactions (original_transaction_id)
    WHERE original_transaction_id IS NOT NULL;
