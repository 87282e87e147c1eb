"""What every layer of deltamix shares: errors, atomic file writing, results records, the precision
policy, resumable run folders, model cards and the mixed-token type the models read.

Nothing here imports another part of deltamix except ``core`` itself.
"""
