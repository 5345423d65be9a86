"""Stand-ins shared by tests."""

from types import SimpleNamespace


class FakeEntryPoint:
    """What importlib.metadata.entry_points yields: a name and an object to load (or an error
    that loading raises), the ``module:attr`` it names and the distribution that ships it."""

    def __init__(self, name, obj=None, value="", dist=None, error=None):
        self.name, self.obj, self.value, self.error = name, obj, value, error
        self.dist = None if dist is None else SimpleNamespace(name=dist)

    def load(self):
        if self.error is not None:
            raise self.error
        return self.obj
