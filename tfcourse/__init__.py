"""tfcourse: the deep-learning course workflow as tested software.

data -> model -> fit -> evaluate -> export, each a plain function call. Importing the
package does nothing beyond defining names: no TensorFlow import, no downloads, no seeds.
One thing is arranged for later: a ``.keras`` file tfcourse wrote loads with plain
``keras.models.load_model`` after ``import tfcourse``. Its custom layers, loss and schedule
(``tfcourse.models.layers``) are registered with Keras once Keras itself is imported: at once
if it is loaded already, else right after its import, by a one-shot import hook.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__version__ = "0.1.0"

_LAYERS = "tfcourse.models.layers"


def _register_layers() -> None:
    try:
        importlib.import_module(_LAYERS)
    except Exception as error:  # noqa: BLE001  (Keras must still import; saved tfcourse models then need it)
        warnings.warn(
            f"tfcourse could not register its Keras layers ({error}); import {_LAYERS} yourself.", stacklevel=2
        )


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Finds ``keras`` with the other finders and runs ``_register_layers`` after Keras' own import."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)  # once: later imports and the search below go to the usual finders
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_keras = spec.loader.exec_module

        def exec_module(module):
            run_keras(module)
            _register_layers()

        spec.loader.exec_module = exec_module  # this spec's own loader object, made for this import
        return spec


if "keras" in sys.modules:
    _register_layers()
elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterKerasImport())
