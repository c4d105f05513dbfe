"""The model: choosing the number of segments and fitting them."""
