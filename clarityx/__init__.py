"""ClarityX: fundus photo screening aid — image I/O, model, inference, Grad-CAM, training tools."""

__version__ = "0.1.0"
