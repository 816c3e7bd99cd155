"""Section 3.7, concise softmax regression, as a learner types it; the only changed import is d2l's."""

import torch
from torch import nn

from linear_nets import d2l

torch.manual_seed(0)  # not in the book: makes the numbers repeatable

batch_size = 256
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)

net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.01)


net.apply(init_weights)
loss = nn.CrossEntropyLoss(reduction="none")  # one loss per example; the training loop averages
trainer = torch.optim.SGD(net.parameters(), lr=0.1)

num_epochs = 10
timer = d2l.Timer()
d2l.train_ch3(net, train_iter, test_iter, loss, num_epochs, trainer)
print(f"trained {num_epochs} epochs in {timer.stop():.2f} sec")
print(f"test accuracy {d2l.evaluate_accuracy(net, test_iter):.4f}")
