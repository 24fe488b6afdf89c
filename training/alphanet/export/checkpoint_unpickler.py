"""Load a foreign PyTorch checkpoint without importing (or executing) the code that wrote it.

The reference's checkpoint (``alphanet_pretrained.pth.tar``) is a pickled dict that also holds the
training ``args``, an instance of AttentiveNAS's ``utils.config.AttrDict``; plain ``torch.load``
fails on it without the reference code on the path, and ``weights_only=True`` rejects it. Here a
restricted unpickler resolves only the globals a tensor checkpoint needs (torch storage and
rebuild helpers, OrderedDict, a few builtins); every other global becomes an inert placeholder
class, so unknown objects load as harmless dicts and nothing from the file is called. Both the
legacy (``_use_new_zipfile_serialization=False``, which the reference's saver uses) and the zip
serialization formats are supported.
"""

from __future__ import annotations

import contextlib
import inspect
import pickle
import types
from pathlib import Path
from typing import Any

import torch

_SAFE_BUILTINS = frozenset(
    {"set", "frozenset", "slice", "complex", "bytearray", "range", "dict", "list", "tuple", "int", "float"}
    | {"bool", "str", "bytes", "object"}
)
_SAFE_GLOBALS = {
    "collections": frozenset({"OrderedDict", "defaultdict"}),
    "copyreg": frozenset({"_reconstructor"}),
    "torch": frozenset({"Size", "device", "dtype", "layout", "memory_format"}),
    "torch._utils": None,  # the _rebuild_* helpers, checked by prefix below
    "torch._tensor": frozenset({"_rebuild_from_type_v2"}),
    "torch.storage": frozenset({"_load_from_bytes", "TypedStorage", "UntypedStorage"}),
    "torch.nn.parameter": frozenset({"Parameter"}),
    "numpy": frozenset({"dtype", "ndarray"}),
    "numpy.core.multiarray": frozenset({"_reconstruct", "scalar"}),
    "_codecs": frozenset({"encode"}),
}


class ForeignObject(dict):
    """Stands in for an object whose class this project does not have; keeps its pickled state."""

    foreign_class = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.__dict__["constructor_args"] = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __repr__(self) -> str:
        return f"<foreign {self.foreign_class}>"


def _placeholder(module: str, name: str) -> type:
    return type(name, (ForeignObject,), {"foreign_class": f"{module}.{name}", "__module__": __name__})


def _is_safe(module: str, name: str) -> bool:
    if module == "builtins":
        return name in _SAFE_BUILTINS
    if module == "torch" and name.endswith("Storage"):
        return True
    if module == "torch._utils":
        return name.startswith("_rebuild_")
    allowed = _SAFE_GLOBALS.get(module)
    return allowed is not None and name in allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only tensor-checkpoint globals; anything else becomes a `ForeignObject` subclass."""

    def find_class(self, module: str, name: str) -> Any:
        if _is_safe(module, name):
            return super().find_class(module, name)
        return _placeholder(module, name)


def _load(file: Any, **kwargs: Any) -> Any:
    return RestrictedUnpickler(file, **kwargs).load()


def _restricted_pickle_module() -> types.ModuleType:
    """A "pickle module" for torch.load: the stdlib's names, with our Unpickler and load."""
    module = types.ModuleType("alphanet_restricted_pickle")
    module.__dict__.update({k: v for k, v in vars(pickle).items() if not k.startswith("__")})
    module.Unpickler = RestrictedUnpickler
    module.load = _load
    return module


restricted_pickle = _restricted_pickle_module()


@contextlib.contextmanager
def _torch_uses_restricted_pickle():
    """PyTorch 1.x's torch.load ignores ``pickle_module`` unless ``weights_only`` is set (it
    resets it to the stdlib module), so on 1.x the module torch.serialization imported is swapped
    for the call; 2.x honours the argument and is left alone."""
    if int(torch.__version__.split(".")[0]) >= 2:
        yield
        return
    original = torch.serialization.pickle
    torch.serialization.pickle = restricted_pickle
    try:
        yield
    finally:
        torch.serialization.pickle = original


def load_foreign_checkpoint(path: Path) -> Any:
    """``torch.load`` of ``path`` on CPU through the restricted unpickler."""
    kwargs: dict[str, Any] = {"map_location": "cpu", "pickle_module": restricted_pickle}
    if "weights_only" in inspect.signature(torch.load).parameters:
        kwargs["weights_only"] = False  # the restricted unpickler is the safety net
    with open(path, "rb") as handle, _torch_uses_restricted_pickle():
        return torch.load(handle, **kwargs)
