"""Offers as the wallet holds and spends them: the read model (`model`) and redemption at the
till (`redemption`). `geo` issues offers; the till never imports `geo`.

May import: `wallet.kernel` (and the floors below `wallet.ledger`).
"""
