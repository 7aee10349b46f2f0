"""regguard's live auditor: collectors observe, rules judge, reporters format."""

__version__ = "0.1.0"
