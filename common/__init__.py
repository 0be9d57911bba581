"""The foundation every layer stands on: errors, the clock and its time sources, components, backoff,
logging, the command line's helpers, TOML key lines and the service manager's notifications.

Nothing here imports a package of this project (``tests/test_layers.py`` holds it to that), so the
node, the drivers, the centre and the tools share it without depending on one another.
"""
