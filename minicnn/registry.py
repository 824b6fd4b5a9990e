"""Where classes are found by name when a saved model is loaded, as Keras's
`register_keras_serializable`: minicnn's layers and models register themselves here, and your
own layers join with the decorator or through load_model(path, custom_objects={...}).

    @minicnn.registry.register_serializable()
    class Scale(Layer): ...

An object is written as {"class_name": name, "config": obj.get_config()} and read back with
cls.from_config(config). Nothing is ever unpickled: a file names a class, never holds code.
"""
_CLASSES = {}


class UnknownClassError(LookupError):
    """A file names a class that is neither registered nor in custom_objects."""


def register_serializable(name=None):
    """Class decorator: make the class loadable by `name` (its class name by default)."""
    def register(cls):
        key = name or cls.__name__
        if _CLASSES.get(key, cls) is not cls:
            raise ValueError(f"another class is already registered as {key!r}: {_CLASSES[key]!r}")
        _CLASSES[key] = cls
        return cls
    return register


def get_class(class_name, custom_objects=None):
    """The class saved under class_name: custom_objects first, then the registry. Only these
    are ever found: a name such as "os.system" is unknown, never imported."""
    if not isinstance(class_name, str):
        raise UnknownClassError(f"a class name must be a string, got {type(class_name).__name__} "
                                f"{class_name!r:.60}")
    known = {**_CLASSES, **(custom_objects or {})}
    if class_name not in known:
        raise UnknownClassError(f"unknown class {class_name!r}; pass your own classes as "
                       f"load_model(path, custom_objects={{{class_name!r}: {class_name}}}) or decorate them "
                       "with @minicnn.registry.register_serializable()")
    return known[class_name]


def serialize(obj):
    """{"class_name": ..., "config": obj.get_config()}: what a file stores for obj."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(spec, custom_objects=None):
    """The layer serialize() described: its class's from_config(config)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise TypeError(f"a layer must be described as {{'class_name': ..., 'config': {{...}}}}, got {spec!r:.80}")
    return get_class(spec.get("class_name"), custom_objects).from_config(spec["config"])
