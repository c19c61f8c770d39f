"""Typed refusals. Each message is written for the person holding the photo."""


class ClarityXError(Exception):
    """Base class: anything ClarityX refuses, with a message a person understands."""


class ImageRejected(ClarityXError):
    """The input cannot be used as a photo (unreadable, too big, too small...)."""


class NotAnImage(ImageRejected):
    pass


class CorruptImage(ImageRejected):
    pass


class ImageTooLarge(ImageRejected):
    pass


class ImageTooSmall(ImageRejected):
    pass


class ModelNotInstalled(ClarityXError):
    """No trained model is where one was expected."""


class EngineNotInstalled(ModelNotInstalled):
    """The model is there, but the engine that runs it is not installed (a ``.keras`` model without its ONNX
    graph in a run-time install, which has no TensorFlow)."""


class ModelUnreadable(ClarityXError):
    """A model file or its card is damaged, or they do not belong together."""


class CardInvalid(ModelUnreadable, ValueError):
    """A model card that is damaged, hand-edited out of its schema, or from a newer ClarityX: the message
    names the card, the field and what it must be."""


class WeightsUnavailable(ClarityXError, RuntimeError):
    """Pretrained weights were asked for but cannot be had (offline, missing file)."""
