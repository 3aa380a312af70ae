"""Command groups of the ``lab`` CLI (thin: parse, call one function, print)."""
