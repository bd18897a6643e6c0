"""One pluggy plugin object per component, so each component has its own entry point."""

from nasx.hookspecs import hookimpl


class SearcherPlugin:
    def __init__(self, component):
        self.component = component

    @hookimpl
    def nasx_register_searchers(self, register):
        register(self.component)


class CombinerPlugin:
    def __init__(self, component):
        self.component = component

    @hookimpl
    def nasx_register_combiners(self, register):
        register(self.component)
