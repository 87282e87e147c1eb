"""The mixed-token types SeqMix produces, under their SeqMix name (defined beside the models that read
them, in `deltamix.models.mixed_tokens`, so that the model layer does not import a method)."""

from deltamix.models.mixed_tokens import MixedBatch, MixedTokens, embed_mixed, scatter_mixed

__all__ = ["MixedBatch", "MixedTokens", "embed_mixed", "scatter_mixed"]
