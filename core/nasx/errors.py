"""Exceptions that carry a message meant for the user."""


class NasxError(Exception):
    """A problem with the user's input or environment; the CLI prints it as one line."""


class InvalidGenotype(NasxError, ValueError):
    """A genotype or its string form is not valid for the space."""


class PluginError(NasxError):
    """A plugin is broken, or two plugins claim the same component name."""


class BudgetExhausted(Exception):
    """Raised inside a search when the budget allows no further evaluation."""
