"""Keras 2's names that Keras 3 removed, kept so that the Keras 2 programs of tutorials and books
run as they are written. Each use says once, in a DeprecationWarning, what Keras 3 writes instead.
"""
import math
import os
import sys
import warnings

import numpy as np

_warned = set()
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _callers_stacklevel():
    """The stacklevel of the first frame outside minicnn: the user's line that used the old name
    (Python shows a DeprecationWarning by default when it is attributed to __main__'s code)."""
    frame, level = sys._getframe(2), 2  # 1 is deprecated() itself, 2 its caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def deprecated(name, keras3_way):
    """Say once per process that `name` is Keras 2's, and what Keras 3 writes instead."""
    if name in _warned:
        return
    _warned.add(name)
    warnings.warn(f"{name} is Keras 2's; Keras 3 removed it. minicnn runs it as Keras 2 did; "
                  f"the Keras 3 way: {keras3_way}", DeprecationWarning, stacklevel=_callers_stacklevel())


def _steps(name, steps):
    """Keras 2 counted steps with `while done < steps`: a float such as len(x) / 32 meant its ceiling."""
    if steps is None or isinstance(steps, (int, np.integer)):
        return steps
    if isinstance(steps, float) and np.isfinite(steps):
        return math.ceil(steps)
    raise ValueError(f"{name} must be a number of batches, got {steps!r}")


def _cycled(generator, steps):
    """A PyDataset read for `steps` batches an epoch: Keras 2 went round it again (reshuffled,
    on_epoch_end) when steps_per_epoch was more than its length; as it is otherwise."""
    from minicnn.utils import PyDataset
    if not isinstance(generator, PyDataset) or steps is None or steps == len(generator):
        return generator

    def batches():
        while True:
            for i in range(len(generator)):
                yield generator[i]
            generator.on_epoch_end()
    return batches()


class Keras2Methods:
    """Model methods of Keras 2 that Keras 3 removed; each runs its Keras 3 successor."""

    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1, callbacks=None,
                      validation_data=None, validation_steps=None, validation_freq=1, class_weight=None,
                      max_queue_size=10, workers=1, use_multiprocessing=False, shuffle=True, initial_epoch=0):
        """Keras 2's fit on a generator of (x, y) batches or a Sequence/PyDataset (such as
        ImageDataGenerator.flow(...)): model.fit(generator, steps_per_epoch=...) in Keras 3.
        max_queue_size, workers, use_multiprocessing and shuffle are accepted and not used
        (minicnn reads the batches in order, itself)."""
        deprecated("model.fit_generator", "model.fit(generator, steps_per_epoch=..., validation_data=...)")
        steps = _steps("steps_per_epoch", steps_per_epoch)
        return self.fit(_cycled(generator, steps), steps_per_epoch=steps, epochs=epochs, verbose=verbose,
                        callbacks=callbacks, validation_data=validation_data,
                        validation_steps=_steps("validation_steps", validation_steps),
                        validation_freq=validation_freq, class_weight=class_weight, initial_epoch=initial_epoch)

    def evaluate_generator(self, generator, steps=None, callbacks=None, max_queue_size=10, workers=1,
                           use_multiprocessing=False, verbose=0):
        """Keras 2's evaluate on a generator: model.evaluate(generator, steps=...) in Keras 3."""
        deprecated("model.evaluate_generator", "model.evaluate(generator, steps=...)")
        return self.evaluate(generator, steps=_steps("steps", steps), callbacks=callbacks, verbose=verbose)

    def predict_generator(self, generator, steps=None, callbacks=None, max_queue_size=10, workers=1,
                          use_multiprocessing=False, verbose=0):
        """Keras 2's predict on a generator: model.predict(generator, steps=...) in Keras 3."""
        deprecated("model.predict_generator", "model.predict(generator, steps=...)")
        return self.predict(generator, steps=_steps("steps", steps), callbacks=callbacks, verbose=verbose)

    def predict_classes(self, x, batch_size=32, verbose=0):
        """Keras 2's Sequential.predict_classes: the class of each sample, argmax of the outputs
        (or output > 0.5 for a single sigmoid unit), shape (N,) (N, 1 for one unit, as Keras 2)."""
        deprecated("model.predict_classes", "np.argmax(model.predict(x), axis=-1), or "
                   "(model.predict(x) > 0.5).astype('int32') for one sigmoid unit")
        p = self.predict(x, batch_size=batch_size, verbose=verbose)
        return p.argmax(axis=-1) if p.shape[-1] > 1 else (p > 0.5).astype("int32")
