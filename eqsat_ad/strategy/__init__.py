"""Strategies: which rulesets run when, with which limits (see ``docs/strategies.md``).

:mod:`~eqsat_ad.strategy.combinators` (``run``, ``saturate``, ``seq``, ``repeat``, ``phase``,
:class:`~eqsat_ad.strategy.combinators.Limits`), :mod:`~eqsat_ad.strategy.defaults` (the
shipped phase-ordered schedule) and :mod:`~eqsat_ad.strategy.schedule_file` (schedule
``.egg`` files).  Nothing is imported here, so importing a sub-module stays cheap.
"""
