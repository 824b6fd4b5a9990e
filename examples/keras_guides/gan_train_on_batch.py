"""A GAN as the Keras 2 tutorials wrote it (the layout of eriklindernoren/Keras-GAN's gan/gan.py:
Sequential generator and discriminator, a `combined` Model, a loop of train_on_batch), with its
imports changed: MNIST becomes Fashion-MNIST (which minicnn's tests find offline). The same file
runs on Keras 3 with the imports given in the comments; two lines differ from Keras 2's, marked
"was:", where Keras 3 asks for another way.

The two `discriminator.trainable = ...` lines in train() are what the Keras 3 way asks: Keras 3
reads `trainable` when a step runs, where Keras 2 read it at compile. Keras-GAN sets it False once,
before compiling `combined`, and on Keras 3 (and minicnn) its discriminator then never trains,
with the warning "The model does not have any trainable weights". MINICNN_GAN_EPOCHS sets the
number of steps (the tests run a few).

    python examples/keras_guides/gan_train_on_batch.py
"""
import os

import numpy as np
from minicnn.datasets import fashion_mnist as mnist            # was: from keras.datasets import mnist
from minicnn.layers import BatchNormalization, Dense, Flatten, Input, LeakyReLU, Reshape  # was: keras.layers
from minicnn.models import Model, Sequential                    # was: from keras.models import ...
from minicnn.optimizers import Adam                             # was: from keras.optimizers import Adam


class GAN():
    def __init__(self):
        self.img_rows = 28
        self.img_cols = 28
        self.channels = 1
        self.img_shape = (self.img_rows, self.img_cols, self.channels)
        self.latent_dim = 100

        optimizer = Adam(0.0002, 0.5)

        # The discriminator, compiled on its own
        self.discriminator = self.build_discriminator()
        self.discriminator.compile(loss='binary_crossentropy', optimizer=optimizer, metrics=['accuracy'])

        # The generator takes noise and makes images
        self.generator = self.build_generator()
        z = Input(shape=(self.latent_dim,))
        img = self.generator(z)

        # In the combined model only the generator trains (train() sets the flag before each step)
        self.discriminator.trainable = False
        validity = self.discriminator(img)

        # The combined model: the generator fools the discriminator
        self.combined = Model(z, validity)
        self.combined.compile(loss='binary_crossentropy', optimizer=Adam(0.0002, 0.5))

    def build_generator(self):
        model = Sequential()
        model.add(Dense(256, input_dim=self.latent_dim))
        model.add(LeakyReLU(alpha=0.2))
        model.add(BatchNormalization(momentum=0.8))
        model.add(Dense(512))
        model.add(LeakyReLU(alpha=0.2))
        model.add(BatchNormalization(momentum=0.8))
        model.add(Dense(int(np.prod(self.img_shape)), activation='tanh'))  # was: Dense(np.prod(...)): Keras 3 wants an int
        model.add(Reshape(self.img_shape))
        model.summary()

        noise = Input(shape=(self.latent_dim,))
        img = model(noise)
        return Model(noise, img)

    def build_discriminator(self):
        model = Sequential()
        model.add(Flatten(input_shape=self.img_shape))
        model.add(Dense(512))
        model.add(LeakyReLU(alpha=0.2))
        model.add(Dense(256))
        model.add(LeakyReLU(alpha=0.2))
        model.add(Dense(1, activation='sigmoid'))
        model.summary()

        img = Input(shape=self.img_shape)
        validity = model(img)
        return Model(img, validity)

    def train(self, epochs, batch_size=128, sample_interval=50):
        (X_train, _), (_, _) = mnist.load_data()
        X_train = X_train / 127.5 - 1.          # to [-1, 1], the generator's tanh range
        X_train = np.expand_dims(X_train, axis=3)

        valid = np.ones((batch_size, 1))
        fake = np.zeros((batch_size, 1))

        for epoch in range(epochs):
            # Train the discriminator on a half batch of real and a half of generated images
            idx = np.random.randint(0, X_train.shape[0], batch_size)
            imgs = X_train[idx]
            noise = np.random.normal(0, 1, (batch_size, self.latent_dim))
            gen_imgs = self.generator.predict(noise, verbose=0)

            self.discriminator.trainable = True       # was: nothing (Keras 2 read the flag at compile)
            d_loss_real = self.discriminator.train_on_batch(imgs, valid)
            d_loss_fake = self.discriminator.train_on_batch(gen_imgs, fake)
            d_loss = 0.5 * np.add(d_loss_real, d_loss_fake)

            # Train the generator to have the discriminator call its images real
            self.discriminator.trainable = False
            noise = np.random.normal(0, 1, (batch_size, self.latent_dim))
            g_loss = self.combined.train_on_batch(noise, valid)

            if epoch % sample_interval == 0:
                print("%d [D loss: %f, acc.: %.2f%%] [G loss: %f]" % (epoch, d_loss[0], 100 * d_loss[1], g_loss))


if __name__ == '__main__':
    gan = GAN()
    gan.train(epochs=int(os.environ.get("MINICNN_GAN_EPOCHS", "3000")), batch_size=32, sample_interval=200)
    print("ran to its end")
