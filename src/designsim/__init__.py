"""designsim: staged LLM design simulations on pull requests, and durable prompt batches.

See README.md for the two flows (review, batch) and DESIGN.md for the contract.
"""

__version__ = "0.1.0"
