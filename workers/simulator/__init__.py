"""Local provider simulator: speaks the OpenAI, Azure OpenAI and Anthropic wire formats.

It is part of the product: the embedded default for the demo and the provider in tests.
Its contract is ../shared/reference/provider-api-spec.md.
"""
