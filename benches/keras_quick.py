#!/usr/bin/env python3
"""Screens short-run recipes for *Quick look* on the seed's own tf.keras GoogLeNet: the same
network and Glorot initialisation, trained on the first N Fashion-MNIST images resized to
SIZE x SIZE, with the optimiser given, and tested on all 10,000 test images every EVAL images.
A fast way to see which optimiser and learning rate leave GoogLeNet's first plateau soonest;
the candidates that look good are then timed in the page (benches/page_run.py).

    /var/tmp/tf-venv/bin/python benches/keras_quick.py --optimizer momentum --lr 0.02 \
        --input-size 32 --batch-size 32 --train-images 20000 --eval-every 4000

Prints one JSON line per test pass.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from keras_peer import googlenet, read_idx  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-images", type=int, default=20000)
    parser.add_argument("--eval-every", type=int, default=4000)
    parser.add_argument("--optimizer", choices=["sgd", "momentum", "nesterov", "adam"], default="sgd")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--init", choices=["glorot", "he"], default="glorot",
                        help="kernel initialisation: Keras's default (the seed's) or He's for ReLU")
    parser.add_argument("--decay", choices=["none", "linear"], default="none",
                        help="the learning rate: constant (the seed's), or falling linearly to 0 at the run's end")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import tensorflow as tf
    from tensorflow.keras import losses, optimizers

    tf.random.set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    d = args.data
    train_x = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))
    train_y = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    test_x = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
    test_y = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    size = args.input_size

    def prepare(x):
        return tf.cast(tf.image.resize(x[:, :, :, np.newaxis] / 255.0, (size, size)), tf.float32)

    net = googlenet()
    net.build((None, size, size, 1))
    if args.init == "he":
        he = tf.keras.initializers.HeUniform(seed=args.seed)
        for weight in net.trainable_weights:
            if len(weight.shape) in (2, 4):
                weight.assign(he(weight.shape))
    if args.optimizer == "sgd":
        opt = optimizers.SGD(learning_rate=args.lr)
    elif args.optimizer in ("momentum", "nesterov"):
        opt = optimizers.SGD(learning_rate=args.lr, momentum=args.momentum, nesterov=args.optimizer == "nesterov")
    else:
        opt = optimizers.Adam(learning_rate=args.lr)
    net.compile(optimizer=opt, loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    test_inputs = prepare(test_x)

    order = rng.permutation(60000)[:args.train_images]
    seen, started, losses_seen = 0, time.perf_counter(), []
    next_eval = args.eval_every
    while seen < args.train_images:
        idx = order[seen:seen + args.batch_size]
        if args.decay == "linear":
            opt.learning_rate.assign(args.lr * (1 - seen / args.train_images))
        loss, _ = net.train_on_batch(prepare(train_x[idx]), train_y[idx])
        losses_seen.append(float(loss))
        seen += len(idx)
        if seen >= next_eval or seen >= args.train_images:
            next_eval += args.eval_every
            logits = net.predict(test_inputs, batch_size=500, verbose=0)
            accuracy = float(np.mean(np.argmax(logits, axis=1) == test_y))
            print(json.dumps({"optimizer": args.optimizer, "init": args.init, "decay": args.decay, "lr": args.lr, "batch": args.batch_size,
                              "size": size, "images": seen, "last_loss": float(np.mean(losses_seen[-20:])),
                              "test_accuracy": accuracy, "seconds": round(time.perf_counter() - started, 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
