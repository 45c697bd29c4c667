"""evalhub's CI functions as a Dagger module (see dagger/README.md)."""

from .main import EvalhubCi

__all__ = ["EvalhubCi"]
