"""customer-segments: which parts of the population a mail-order company's customers come from."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("customer-segments")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
