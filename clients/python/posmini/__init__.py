"""posmini: a client of posminid's socket, Python's standard library only (docs/PROTOCOL.md)."""
from .client import (ADVICE, DEFAULT_SOCKET, Cancelled, Card, Client, PosminiError, Refused, Removed, SaleError,
                     Timeout, TooLate)

__all__ = ["ADVICE", "DEFAULT_SOCKET", "Cancelled", "Card", "Client", "PosminiError", "Refused", "Removed", "SaleError",
           "Timeout", "TooLate"]
__version__ = "0.6.0"
