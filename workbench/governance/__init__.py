"""Data owners decide: hash-pinned approvals, mock data to review against, a release policy, an audit trail.

The model is PySyft's (see docs/governance.md): a data owner reviews what a recipe would do with its data on mock
rows, signs the recipe's hash with its own key, and only then may the runner open its store; what the party
publishes is released under the policy it signed, and every approval, access and release goes into a hash-chained log
of its own.
"""
