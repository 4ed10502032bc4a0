"""Vouchers as the till takes them: the pure model (`model`: codes, status, whether a voucher
may be used here, now, by this card) and their redemption inside a till transaction
(`redemption`: locked reads by code, use, restore on refund). The rewards catalogue
(`wallet.rewards`) creates them; the till never imports the catalogue.

May import: `wallet.kernel` (and the floors below `wallet.ledger`).
"""
