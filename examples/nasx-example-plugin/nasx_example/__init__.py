"""Example nasx plugin."""
