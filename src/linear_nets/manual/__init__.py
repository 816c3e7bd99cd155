"""Hand-derived gradients, no autograd: the same models as `scratch`, each gradient written out and checked."""
