"""The pluggy hook of a plugin module that registers several components at once.

Most plugins need no hook: an entry point names one component class (``"proxy.naswot" =
"nasx_proxies.naswot:NASWOT"``). A module that registers several components (or decides at run time which) names
itself in the entry point and implements ``nasx_register``.
"""

import pluggy

hookspec = pluggy.HookspecMarker("nasx")
hookimpl = pluggy.HookimplMarker("nasx")


@hookspec
def nasx_register(register):
    """Register component classes: ``register(cls)`` takes a subclass of any interface of :mod:`nasx.interfaces`
    (its kind comes from the class) and checks it before accepting it."""
