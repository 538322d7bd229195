"""Registry: name -> builder, one per kind (backbones, temporal heads, fusions, detectors). CLI choices, config
validation and the dashboard's menus read `names()`."""
from utils.errors import UserError


class Registry:
    """Duplicate names are refused; an unknown name is a UserError that lists the valid ones."""

    def __init__(self, kind: str):
        self.kind, self._items = kind, {}

    def register(self, name: str):
        def wrap(fn):
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = fn
            return fn
        return wrap

    def get(self, name: str):
        if name not in self._items:
            raise UserError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list:
        return sorted(self._items)

    def name_of(self, item):
        """The name an item was registered under; None for an item never registered."""
        return next((name for name, registered in self._items.items() if registered is item), None)
