"""prefshift: preference tuning of language models under domain shift."""

__version__ = "0.1.0"
