"""The Keras guide "Writing a training loop from scratch in TensorFlow" (keras.io, Keras 3), with
its imports changed, and three more changes where minicnn has no equivalent: tf.data's lines
become a NumPy batcher, the @tf.function decorators are dropped (no graph compiler), and MNIST
becomes Fashion-MNIST (which minicnn's tests find offline). MINICNN_GUIDE_LIMIT trains on
fewer images (the tests do).

    python examples/keras_guides/training_loop_from_scratch.py
"""
import os
import minicnn as tf                 # was: import tensorflow as tf
import minicnn as keras              # was: import keras
import numpy as np

def get_model():
    inputs = keras.Input(shape=(784,), name="digits")
    x1 = keras.layers.Dense(64, activation="relu")(inputs)
    x2 = keras.layers.Dense(64, activation="relu")(x1)
    outputs = keras.layers.Dense(10, name="predictions")(x2)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model

model = get_model()
optimizer = keras.optimizers.Adam(learning_rate=1e-3)
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

batch_size = 32
(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()  # was: mnist
x_train = np.reshape(x_train, (-1, 784)).astype("float32") / 255
x_test = np.reshape(x_test, (-1, 784)).astype("float32") / 255
limit = int(os.environ.get("MINICNN_GUIDE_LIMIT", "50000"))
x_val, y_val = x_train[-10000:][:limit], y_train[-10000:][:limit]
x_train, y_train = x_train[:-10000][:limit], y_train[:-10000][:limit]

def batches(x, y, shuffle=False):    # was: tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1024).batch(batch_size)
    order = np.random.permutation(len(x)) if shuffle else np.arange(len(x))
    for s in range(0, len(x), batch_size):
        yield x[order[s:s + batch_size]], y[order[s:s + batch_size]]

train_acc_metric = keras.metrics.SparseCategoricalAccuracy()
val_acc_metric = keras.metrics.SparseCategoricalAccuracy()

def train_step(x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss_value = loss_fn(y, logits)
    grads = tape.gradient(loss_value, model.trainable_weights)
    optimizer.apply(grads, model.trainable_weights)
    train_acc_metric.update_state(y, logits)
    return loss_value

def test_step(x, y):
    val_logits = model(x, training=False)
    val_acc_metric.update_state(y, val_logits)

epochs = 2
for epoch in range(epochs):
    print(f"\nStart of epoch {epoch}")
    for step, (x_batch_train, y_batch_train) in enumerate(batches(x_train, y_train, shuffle=True)):
        loss_value = train_step(x_batch_train, y_batch_train)
        if step % 200 == 0:
            print(f"Training loss (for 1 batch) at step {step}: {float(loss_value):.4f}")
            print(f"Seen so far: {(step + 1) * batch_size} samples")
    train_acc = train_acc_metric.result()
    print(f"Training acc over epoch: {float(train_acc):.4f}")
    train_acc_metric.reset_state()
    for x_batch_val, y_batch_val in batches(x_val, y_val):
        test_step(x_batch_val, y_batch_val)
    val_acc = val_acc_metric.result()
    val_acc_metric.reset_state()
    print(f"Validation acc: {float(val_acc):.4f}")

# Low-level handling of losses tracked by the model
class ActivityRegularizationLayer(keras.layers.Layer):
    def call(self, inputs):
        self.add_loss(1e-2 * keras.ops.sum(inputs))  # the Keras 3 guide: ops.sum (its TF twin: tf.reduce_sum)
        return inputs

inputs = keras.Input(shape=(784,), name="digits")
x = keras.layers.Dense(64, activation="relu")(inputs)
x = ActivityRegularizationLayer()(x)
x = keras.layers.Dense(64, activation="relu")(x)
outputs = keras.layers.Dense(10, name="predictions")(x)
model = keras.Model(inputs=inputs, outputs=outputs)

def train_step(x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss_value = loss_fn(y, logits)
        loss_value += sum(model.losses)
    grads = tape.gradient(loss_value, model.trainable_weights)
    optimizer.apply(grads, model.trainable_weights)
    train_acc_metric.update_state(y, logits)
    return loss_value

optimizer = keras.optimizers.Adam(learning_rate=1e-3)
for step, (x_batch_train, y_batch_train) in enumerate(batches(x_train[:3200], y_train[:3200])):
    loss_value = train_step(x_batch_train, y_batch_train)
print("last loss", float(loss_value), "- the guide ran to its end")
