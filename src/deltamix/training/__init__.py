"""The seq2seq training loop (accelerate underneath), its learning-rate schedules and metrics, and
`Predictor` for decoding with a model a run saved.

GLUE training runs on transformers' Trainer instead (`deltamix.diffprune.trainer`).

>>> from deltamix.training.loop import Seq2SeqTrainingLoop, TrainingConfig  # doctest: +SKIP
>>> from deltamix.training.predict import Predictor  # doctest: +SKIP
"""
