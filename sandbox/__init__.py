"""The embedded AWS (moto plus emulations), the fleet builder and the end-to-end demo."""

from .core import EmbeddedAws, EmulatedClock, embedded_aws
from .lambda_runtime import LambdaContext, LambdaFunction

__all__ = ["EmbeddedAws", "EmulatedClock", "LambdaContext", "LambdaFunction", "embedded_aws"]
