#!/usr/bin/env python3
"""The peer on the CPU: the seed's own tf.keras GoogLeNet (D2L 5.9), trained as the seed trains
it (SGD, learning rate 0.05, softmax cross-entropy on logits), on real Fashion-MNIST images
resized to 96x96, timed the way `--bin bench` times the app: one untimed warm-up step, then
timed steps, and the median of single-image predictions.

    python3 -m venv /var/tmp/tf-venv && /var/tmp/tf-venv/bin/pip install tensorflow-cpu
    /var/tmp/tf-venv/bin/python benches/keras_peer.py --batch-sizes 32,128 --steps 3

Prints one JSON object (the same figures as the app's benchmark) on stdout.
"""
import argparse
import gzip
import json
import os
import platform
import statistics
import time

import numpy as np


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def googlenet():
    """The seed's network, layer for layer (its notebook, In [0] cells 3 to 9)."""
    from tensorflow.keras import Sequential, layers
    import tensorflow as tf

    class Inception(layers.Layer):
        def __init__(self, c1, c2, c3, c4):
            super().__init__()
            self.p1_1 = layers.Conv2D(c1, kernel_size=1, activation="relu")
            self.p2_1 = layers.Conv2D(c2[0], kernel_size=1, activation="relu")
            self.p2_2 = layers.Conv2D(c2[1], kernel_size=3, padding="same", activation="relu")
            self.p3_1 = layers.Conv2D(c3[0], kernel_size=1, activation="relu")
            self.p3_2 = layers.Conv2D(c3[1], kernel_size=5, padding="same", activation="relu")
            self.p4_1 = layers.MaxPool2D(pool_size=3, strides=1, padding="same")
            self.p4_2 = layers.Conv2D(c4, kernel_size=1, activation="relu")

        def call(self, x):
            p1 = self.p1_1(x)
            p2 = self.p2_2(self.p2_1(x))
            p3 = self.p3_2(self.p3_1(x))
            p4 = self.p4_2(self.p4_1(x))
            return tf.concat((p1, p2, p3, p4), axis=-1)

    b1 = Sequential([layers.Conv2D(64, kernel_size=7, strides=2, padding="same", activation="relu"),
                     layers.MaxPool2D(pool_size=3, strides=2, padding="same")])
    b2 = Sequential([layers.Conv2D(64, kernel_size=1, activation="relu"),
                     layers.Conv2D(192, kernel_size=3, padding="same", activation="relu"),
                     layers.MaxPool2D(pool_size=3, strides=2, padding="same")])
    b3 = Sequential([Inception(64, (96, 128), (16, 32), 32), Inception(128, (128, 192), (32, 96), 64),
                     layers.MaxPool2D(pool_size=3, strides=2, padding="same")])
    b4 = Sequential([Inception(192, (96, 208), (16, 48), 64), Inception(160, (112, 224), (24, 64), 64),
                     Inception(128, (128, 256), (24, 64), 64), Inception(112, (144, 288), (32, 64), 64),
                     Inception(256, (160, 320), (32, 128), 128),
                     layers.MaxPool2D(pool_size=3, strides=2, padding="same")])
    b5 = Sequential([Inception(256, (160, 320), (32, 128), 128), Inception(384, (192, 384), (48, 128), 128),
                     layers.GlobalAveragePooling2D()])
    return Sequential([b1, b2, b3, b4, b5, layers.Dense(10)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--batch-sizes", default="32,128")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    import tensorflow as tf
    from tensorflow.keras import losses, optimizers

    images = read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    size = args.input_size
    net = googlenet()
    net.build((None, size, size, 1))
    params = int(sum(np.prod(w.shape) for w in net.trainable_weights))
    net.compile(optimizer=optimizers.SGD(learning_rate=0.05),
                loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    def batch(start, count):
        x = tf.image.resize(images[start:start + count, :, :, np.newaxis] / 255.0, (size, size))
        return tf.cast(x, tf.float32), labels[start:start + count]

    # Inference: one image through the compiled graph, the median after warm-ups (as the
    # app's benchmark; an eager call costs ten times more in Python dispatch).
    one, _ = batch(0, 1)
    predict = tf.function(lambda x: net(x, training=False))
    times = []
    for _ in range(args.runs + 3):
        started = time.perf_counter()
        predict(one).numpy()
        times.append((time.perf_counter() - started) * 1000)
    inference = {"first_ms": times[0], "median_ms": statistics.median(times[3:]), "runs": args.runs}

    training = []
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        x, y = batch(0, batch_size)
        net.train_on_batch(x, y)  # warm-up: graph tracing
        started = time.perf_counter()
        for step in range(args.steps):
            x, y = batch((step + 1) * batch_size, batch_size)
            net.train_on_batch(x, y)
        seconds = time.perf_counter() - started
        training.append({"batch_size": batch_size, "timed_steps": args.steps, "seconds": seconds,
                         "images_per_second": batch_size * args.steps / seconds})
    print(json.dumps({
        "runner": "tf.keras",
        "tensorflow": tf.__version__,
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                    "cpus": os.cpu_count()},
        "machine": platform.processor() or platform.machine(),
        "params": params,
        "input_size": size,
        "inference": inference,
        "training": training,
    }, indent=2))


if __name__ == "__main__":
    main()
