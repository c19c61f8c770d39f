"""What screening a photo needs at run time — image input, ``prepare``, the gate, the OOD test,
the card, the ONNX engine, the pipeline and the heat-map overlay — and nothing that imports
TensorFlow, Keras or scikit-learn."""
