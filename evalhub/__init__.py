"""evalhub: declarative GitOps evaluation-as-code for LLM and RAG systems."""

__version__ = "0.1.0"

__all__ = ["__version__"]
