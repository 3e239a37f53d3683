"""memprobe: which code-loading strategies does this host allow, and what blocks the rest."""

__version__ = "0.1.0"
