"""The pasted format is the contract's (contracts.paste): kept importable here."""
from contracts.paste import ENTRY, PastedEntry, parse_pasted

__all__ = ["ENTRY", "PastedEntry", "parse_pasted"]
