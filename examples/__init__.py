"""The seed tutorials as runnable examples (``python examples/NAME.py`` or
``minicnn examples run NAME``); shipped inside the wheel as ``minicnn._examples``."""
