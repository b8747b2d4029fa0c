"""tfcourse: the deep-learning course workflow as tested software.

data -> model -> fit -> evaluate -> export, each a plain function call. Importing the
package does nothing beyond defining names: no TensorFlow import, no downloads, no seeds.
"""

__version__ = "0.1.0"
