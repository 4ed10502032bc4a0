"""Programs (currency, earn rules, tiers, time zone) and their operator accounts (managers,
store-scoped staff, admins).

May import: `wallet.kernel`.
"""
