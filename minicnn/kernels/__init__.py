"""Kernels: the readable NumPy reference (`reference`) and the fast twins that honour
the same contract. `minicnn.backend` picks which one the layers call."""
