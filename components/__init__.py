"""Pulumi components, one module per registry kind, all translating the
shared hardening model in `components.baseline`.

Nothing is imported here on purpose: `components.baseline` must stay
importable without the Pulumi SDKs (the policy pack and the auditor use it).
"""
