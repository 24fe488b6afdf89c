"""From a trained supernet to a zoo: ONNX export, parity fixtures, manifest entries and the
import of the official AlphaNet checkpoint."""
