"""The network: backbones and weights adapters by name, the seed head, the Keras (TensorFlow)
engine and the ONNX / TFLite export."""
