"""The audit trail: who changed which membership, when and through which door (the entries'
hash chain, their actors, and writing them in the transaction of the change)."""
