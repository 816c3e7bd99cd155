"""linear-nets: linear regression and softmax regression as chapter 3 of Dive into Deep Learning teaches them.

Subpackages keep one concept each: `data` (IDX files, Fashion-MNIST, synthetic data, minibatches), `scratch`
(the math with autograd), `manual` (hand-derived gradients), `concise` (torch.nn), and the shared `losses`,
`training`, `plotting` and `cli` modules.
"""

__version__ = "0.1.0"
