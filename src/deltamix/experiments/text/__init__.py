"""Seq2seq runs on text: translation (Multi30k, IWSLT), GeoQuery parsing and any source/target
files, each trained with the library's loop and scored on its test set (``run``)."""
