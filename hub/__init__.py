"""The hub: promotes one golden AMI to spokes (account x region) in waves.

Stdlib + botocore only, and shipped in its own Lambda package: the spoke's package
(``handler/``) does not grow.
"""
