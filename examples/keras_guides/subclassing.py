"""The Keras guide "Making new layers and models via subclassing" (keras.io, Keras 3), its first
sections with the imports changed: weights made in __init__ and in build, a non-trainable
weight updated with assign_add, layers of layers, add_loss.

    python examples/keras_guides/subclassing.py
"""
import numpy as np
import minicnn as keras          # was: import keras
from minicnn import ops          # was: from keras import ops
from minicnn import layers       # was: from keras import layers

class Linear(keras.layers.Layer):
    def __init__(self, units=32, input_dim=32):
        super().__init__()
        self.w = self.add_weight(shape=(input_dim, units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)
    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

x = ops.ones((2, 2))
linear_layer = Linear(4, 2)
y = linear_layer(x)
print(y)

class ComputeSum(keras.layers.Layer):
    def __init__(self, input_dim):
        super().__init__()
        self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)
    def call(self, inputs):
        self.total.assign_add(ops.sum(inputs, axis=0))
        return self.total

x = ops.ones((2, 2))
my_sum = ComputeSum(2)
y = my_sum(x)
print(y.numpy())
y = my_sum(x)
print(y.numpy())
print("weights:", len(my_sum.weights))
print("non-trainable weights:", len(my_sum.non_trainable_weights))
print("trainable_weights:", my_sum.trainable_weights)

class Linear(keras.layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)
    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

linear_layer = Linear(32)
y = linear_layer(x)

class MLPBlock(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.linear_1 = Linear(32)
        self.linear_2 = Linear(32)
        self.linear_3 = Linear(1)
    def call(self, inputs):
        x = self.linear_1(inputs)
        x = ops.relu(x)
        x = self.linear_2(x)
        x = ops.relu(x)
        return self.linear_3(x)

mlp = MLPBlock()
y = mlp(ops.ones(shape=(3, 64)))
print("weights:", len(mlp.trainable_weights))
print("trainable weights:", len(mlp.trainable_weights))

class ActivityRegularizationLayer(keras.layers.Layer):
    def __init__(self, rate=1e-2):
        super().__init__()
        self.rate = rate
    def call(self, inputs):
        self.add_loss(self.rate * ops.mean(inputs))
        return inputs

class OuterLayer(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.activity_reg = ActivityRegularizationLayer(1e-2)
    def call(self, inputs):
        return self.activity_reg(inputs)

layer = OuterLayer()
assert len(layer.losses) == 0
_ = layer(ops.zeros((1, 1)))
assert len(layer.losses) == 1
print("guide ran to its end")
_ = layer(ops.zeros((1, 1)))
assert len(layer.losses) == 1  # the losses of the last call only
print("and the second call's losses are its own")
