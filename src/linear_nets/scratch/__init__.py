"""From scratch with autograd (d2l 3.2, 3.6): the models written as their equations, gradients by autograd."""
