"""Section 3.3, concise linear regression, as a learner types it; the only changed import is d2l's."""

import torch
from torch import nn

from linear_nets import d2l

torch.manual_seed(0)  # not in the book: makes the numbers repeatable

true_w = torch.tensor([2, -3.4])
true_b = 4.2
features, labels = d2l.synthetic_data(true_w, true_b, 1000)

batch_size = 10
data_iter = d2l.load_array((features, labels), batch_size)
X, y = next(iter(data_iter))
print("first minibatch:", tuple(X.shape), tuple(y.shape))

net = nn.Sequential(nn.Linear(2, 1))
net[0].weight.data.normal_(0, 0.01)
net[0].bias.data.fill_(0)
loss = nn.MSELoss()
trainer = torch.optim.SGD(net.parameters(), lr=0.03)

num_epochs = 3
for epoch in range(num_epochs):
    for X, y in data_iter:
        batch_loss = loss(net(X), y)
        trainer.zero_grad()
        batch_loss.backward()
        trainer.step()
    with torch.no_grad():
        print(f"epoch {epoch + 1}, loss {float(loss(net(features), labels)):f}")

# The book's chapter-4 helper: mean per-example loss over a whole loader.
print(f"evaluate_loss: {d2l.evaluate_loss(net, data_iter, nn.MSELoss(reduction='none')):f}")

w = net[0].weight.data
b = net[0].bias.data
print(f"max error in w: {float((true_w - w.reshape(true_w.shape)).abs().max()):.6f}")
print(f"error in b: {float(true_b - b):.6f}")
