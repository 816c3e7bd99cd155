"""Section 3.2, linear regression from scratch, as a learner types it; the only changed import is d2l's."""

import torch

from linear_nets import d2l

torch.manual_seed(0)  # not in the book: makes the numbers repeatable (d2l's data follows torch's seed too)

# Data: y = Xw + b + noise, 1000 examples with two features.
true_w = torch.tensor([2, -3.4])
true_b = 4.2
features, labels = d2l.synthetic_data(true_w, true_b, 1000)
print("features[0]:", features[0], "label:", labels[0])

d2l.set_figsize()
d2l.plt.scatter(d2l.numpy(features[:, 1]), d2l.numpy(labels), 1)
d2l.plt.savefig("scatter.png")


def minibatches(batch_size, X, y):
    """Visit the examples in a random order, `batch_size` at a time."""
    order = torch.randperm(len(X))
    for start in range(0, len(X), batch_size):
        chosen = order[start : start + batch_size]
        yield X[chosen], y[chosen]


batch_size = 10
for X, y in minibatches(batch_size, features, labels):
    print("a minibatch:", tuple(X.shape), tuple(y.shape))
    break

# Parameters start small and random; autograd tracks them.
w = d2l.normal(0, 0.01, size=(2, 1), requires_grad=True)
b = d2l.zeros(1, requires_grad=True)

lr, num_epochs = 0.03, 3
net, loss = d2l.linreg, d2l.squared_loss
for epoch in range(num_epochs):
    for X, y in minibatches(batch_size, features, labels):
        batch_loss = loss(net(X, w, b), y)
        batch_loss.sum().backward()
        d2l.sgd([w, b], lr, batch_size)
    with torch.no_grad():
        print(f"epoch {epoch + 1}, loss {float(loss(net(features, w, b), labels).mean()):f}")

w, b = w.detach(), b.detach()
print(f"max error in w: {float(d2l.abs(true_w - d2l.reshape(w, true_w.shape)).max()):.6f}")
print(f"error in b: {float(true_b - b):.6f}")
