"""Tools for studying backprop: gradient checking, tracing, Keras parity, live view."""
