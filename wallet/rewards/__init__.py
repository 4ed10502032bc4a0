"""The rewards catalogue: rewards members buy with points, and the vouchers they claim.

`rules` (pure: rewards, who may claim them, what a claim and an expiry append to the
ledger) · `rewards_repo`, `vouchers_repo` (SQL) · `rewards_service` (the catalogue, for
managers and members), `claims_service` (claims and the expiry of vouchers) and
`till_service` (a voucher used on its own at the till) own the transactions. Vouchers as the
till takes them inside a purchase are `wallet.vouchers`, a floor below the ledger.

May import: every other floor of `wallet` (it sits above `wallet.ledger`).
"""
