"""The seq2seq training loop (accelerate underneath), its settings, checkpoints, schedules and metrics,
and `Predictor` for decoding with a model a run saved.

GLUE training runs on transformers' Trainer instead (`deltamix.diffprune.trainer`).

- ``loop``: `Seq2SeqTrainingLoop`, which trains, evaluates and saves one model in one run folder;
- ``config``: `Seq2SeqTrainingConfig`, how it trains and decodes;
- ``checkpoint``, ``distributed``, ``augmentation``, ``evaluation``: its files, its processes, the
  batch of a step, evaluation across processes;
- ``decoding``, ``model_io``, ``predict``: decoding settings, saved model folders, `Predictor`;
- ``snapshots``, ``lr_schedule``, ``metrics``: epoch snapshots and their average, learning-rate
  schedules, exact match and BLEU.

>>> from deltamix.training.loop import Seq2SeqTrainingConfig, Seq2SeqTrainingLoop  # doctest: +SKIP
>>> from deltamix.training.predict import Predictor  # doctest: +SKIP
"""
