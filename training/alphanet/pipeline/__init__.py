"""The training-then-publish pipeline (``python3 -m alphanet pipeline``, ``npm run pipeline``) and the
distillation-loss ablation runner (``python3 -m alphanet ablation``, ``npm run ablation``).

One config file (``training/configs/pipeline/*.yaml``) drives: supernet source (train/resume, a
checkpoint, or the official AlphaNet checkpoint) -> family (named archs or evolutionary search) ->
BN recalibration -> PyTorch evaluation -> ONNX export -> validation in onnxruntime-node (parity,
top-1, latency) -> manifest -> atomic publish into the zoo directory -> server reload, with a
report and a model card. Each stage is a module of this package; `runner` strings them together.
"""
