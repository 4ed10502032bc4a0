"""The points and stored-value ledger: `rules` (pure: amounts and lots in, entries out),
`account_repo` (what an operation reads under the account's row lock), `ledger_repo` (the
one-statement write), `till` (the service: scan, purchase, refund, top-up, each one
transaction), `expiry` (the job), `statement_repo` + `statement_service` (the member's own).

May import: every other floor of `wallet`.
"""
