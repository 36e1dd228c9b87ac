"""Wire contracts of userprov: the messages, their routing, and their schemas.

Importable with pydantic (and email-validator) alone, so that a publishing service
can depend on these models without pulling in the workers.
"""
