"""Section 3.5, the Fashion-MNIST dataset, as a learner types it; the only changed import is d2l's.

The book reads the data through torchvision; with `linear_nets.d2l` the loader is `d2l.load_data_fashion_mnist`,
which finds the files offline.
"""

from linear_nets import d2l

d2l.use_svg_display()

batch_size = 256
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)

X, y = next(iter(test_iter))  # the test set keeps its file order: these are its first images
print("one batch:", tuple(X.shape), X.dtype, tuple(y.shape), y.dtype)
print("labels:", ", ".join(d2l.get_fashion_mnist_labels(y[:18])))
d2l.show_images(X[:18].reshape(18, 28, 28), 2, 9, titles=d2l.get_fashion_mnist_labels(y[:18]))
d2l.plt.savefig("examples.png")

print("workers the book would start:", d2l.get_dataloader_workers())
timer = d2l.Timer()
seen = 0
for _, y in train_iter:
    seen += len(y)
print(f"read {seen} training images in {timer.stop():.2f} sec")

train_iter, test_iter = d2l.load_data_fashion_mnist(32, resize=64)
for X, y in train_iter:
    print("resized:", X.shape, X.dtype, y.shape, y.dtype)
    break
