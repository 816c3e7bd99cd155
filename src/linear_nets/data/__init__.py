"""Data: the IDX file format, Fashion-MNIST (find, verify, load), synthetic regression data, minibatches."""
