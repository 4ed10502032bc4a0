"""Privacy by design: the access log of every staff or manager read, the member's export
(`rights`), erasure, retention periods (`retention`, pure) and the purge that enforces them,
and the generated privacy notice (`notice`, pure).

May import: `wallet.kernel`, `wallet.programs`, `wallet.members`.
"""
