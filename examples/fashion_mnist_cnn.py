"""The classic Keras Fashion-MNIST tutorial, line for line, with `keras` changed to `minicnn`.

    python examples/fashion_mnist_cnn.py

With no display, the figure is saved to fashion_mnist_sample.png instead of shown.
"""
import minicnn
from minicnn.datasets import fashion_mnist
from minicnn.layers import Dense, Activation, Flatten, Conv2D, MaxPooling2D
from minicnn.models import Sequential
from minicnn.utils import to_categorical
import numpy as np
import matplotlib.pyplot as plt
(train_X,train_Y), (test_X,test_Y) = fashion_mnist.load_data()
train_X = train_X.reshape(-1, 28,28, 1)
test_X = test_X.reshape(-1, 28,28, 1)
train_X = train_X.astype('float32')
test_X = test_X.astype('float32')
train_X = train_X / 255
test_X = test_X / 255
train_Y_one_hot = to_categorical(train_Y)
test_Y_one_hot = to_categorical(test_Y)
model = Sequential()
model.add(Conv2D(64, (3,3), input_shape=(28, 28, 1)))
model.add(Activation('relu'))
model.add(MaxPooling2D(pool_size=(2,2)))
model.add(Conv2D(64, (3,3)))
model.add(Activation('relu'))
model.add(MaxPooling2D(pool_size=(2,2)))
model.add(Flatten())
model.add(Dense(64))
model.add(Dense(10))
model.add(Activation('softmax'))
model.compile(loss=minicnn.losses.categorical_crossentropy, optimizer=minicnn.optimizers.Adam(),metrics=['accuracy'])
model.fit(train_X, train_Y_one_hot, batch_size=64, epochs=5)
test_loss, test_acc = model.evaluate(test_X, test_Y_one_hot)
print('Test loss', test_loss)
print('Test accuracy', test_acc)
predictions = model.predict(test_X)
print(np.argmax(np.round(predictions[0])))
plt.imshow(test_X[0].reshape(28, 28), cmap = plt.cm.binary)
# minicnn's only addition: with no display (matplotlib's Agg backend), save instead of show.
if plt.get_backend().lower() == "agg":
    plt.savefig("fashion_mnist_sample.png")
    print("no display: saved the figure to fashion_mnist_sample.png")
else:
    plt.show()
