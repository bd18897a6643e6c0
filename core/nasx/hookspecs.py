"""pluggy hook specifications. A plugin implements one or more ``nasx_register_*`` hooks.

Each hook receives ``register``, a callable that takes a component class of the hook's kind
(a subclass of the matching interface in :mod:`nasx.interfaces`) and checks it before accepting it.
"""

import pluggy

hookspec = pluggy.HookspecMarker("nasx")
hookimpl = pluggy.HookimplMarker("nasx")


@hookspec
def nasx_register_spaces(register):
    """Register Space subclasses."""


@hookspec
def nasx_register_proxies(register):
    """Register Proxy subclasses."""


@hookspec
def nasx_register_combiners(register):
    """Register Combiner subclasses."""


@hookspec
def nasx_register_searchers(register):
    """Register Searcher subclasses."""


@hookspec
def nasx_register_constraints(register):
    """Register Constraint subclasses."""


@hookspec
def nasx_register_executors(register):
    """Register Executor subclasses."""
