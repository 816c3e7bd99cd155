"""Section 3.6, softmax regression from scratch, as a learner types it; the only changed import is d2l's."""

import torch

from linear_nets import d2l

torch.manual_seed(0)  # not in the book: makes the numbers repeatable (d2l's shuffling follows torch's seed)

batch_size = 256
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)

num_inputs, num_outputs = 28 * 28, 10
W = torch.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
b = torch.zeros(num_outputs, requires_grad=True)


def softmax(logits):
    """Exponentiate, then divide each row by its sum."""
    e = torch.exp(logits)
    return e / e.sum(dim=1, keepdim=True)


def net(X):
    return softmax(torch.matmul(X.reshape(-1, num_inputs), W) + b)


def cross_entropy(probs, y):
    """Minus the log of the probability given to the true class, one value per example."""
    return -torch.log(probs[torch.arange(len(probs)), y])


X, y = next(iter(test_iter))
print(f"one batch before training: {d2l.accuracy(net(X), y) / len(y):.3f} correct")
print(f"test accuracy before training: {d2l.evaluate_accuracy(net, test_iter):.3f}")

lr = 0.1


def updater(batch_size):
    return d2l.sgd([W, b], lr, batch_size)


num_epochs = 10
timer = d2l.Timer()
d2l.train_ch3(net, train_iter, test_iter, cross_entropy, num_epochs, updater)
print(f"trained {num_epochs} epochs in {timer.stop():.2f} sec")
print(f"test accuracy {d2l.evaluate_accuracy(net, test_iter):.4f}")

d2l.predict_ch3(net, test_iter)
