"""Data sets with Keras's return shapes: ``mnist``, ``fashion_mnist``, ``cifar10``
(``load_data()``), ``fetch_olivetti_faces``, image folders, and the embedded demo data.

Files are looked for in ``data_dir=``, then ``$MINICNN_DATA``, then the cache, then
downloaded (see ``files``)."""
from . import cifar10, embedded, fashion_mnist, mnist
from .directory import image_dataset_from_directory
from .files import fetch
from .olivetti import fetch_olivetti_faces

__all__ = ["mnist", "fashion_mnist", "cifar10", "fetch_olivetti_faces", "image_dataset_from_directory",
           "embedded", "fetch"]
