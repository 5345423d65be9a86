"""Stand-ins shared by tests."""


class FakeEntryPoint:
    """What importlib.metadata.entry_points yields: a name and an object to load."""

    def __init__(self, name, obj):
        self.name, self.obj = name, obj

    def load(self):
        return self.obj
