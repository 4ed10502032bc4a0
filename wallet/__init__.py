"""The loyalty wallet: programs, members, cards, the points and stored-value ledger, tiers."""
