"""Operations plumbing every layer may use: metrics, readiness checks, log configuration.

This package sits beside the layers (like `settings` and `clock`): any layer may import it,
and it imports no layer, so the delivery worker or the upstream client can record metrics
and register readiness checks without reaching up into api/.
"""
