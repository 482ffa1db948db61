"""What holds and runs work on the Ray cluster.

The use cases (service), the session state machine and its actor, job launchers, the storage layout, settings.
"""
