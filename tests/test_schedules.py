"""Learning-rate schedules against Keras 3's, step by step."""
import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import minicnn

SCHEDULES = [("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 20, "decay_rate": 0.5}),
             ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 20, "decay_rate": 0.5, "staircase": True}),
             ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.3}),
             ("PiecewiseConstantDecay", {"boundaries": [5, 50], "values": [0.1, 0.05, 0.01]}),
             ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 60, "power": 2.0}),
             ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 60, "cycle": True}),
             ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 80, "alpha": 0.1}),
             ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 80, "warmup_target": 0.1, "warmup_steps": 30})]


@pytest.mark.parametrize("name,kwargs", SCHEDULES)
def test_schedules_match_keras(keras, name, kwargs):
    ours, theirs = getattr(minicnn.optimizers.schedules, name)(**kwargs), getattr(keras.optimizers.schedules, name)(**kwargs)
    for step in (0, 1, 5, 6, 29, 30, 50, 51, 100, 150):
        assert ours(step) == pytest.approx(float(theirs(step)), rel=1e-5, abs=1e-9), step  # Keras: float32
