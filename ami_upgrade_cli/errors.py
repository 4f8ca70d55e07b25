"""One error type with its exit code; AWS's errors translated into what to do about them."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from . import EXIT_ATTENTION, EXIT_AWS, EXIT_USAGE

DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
          "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
          "ExpiredTokenException", "InvalidSignatureException", "SignatureDoesNotMatch",
          "AuthFailure"}


class CliError(Exception):
    """What went wrong, for the operator, and the exit code."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def translate(exc: Exception, what: str) -> CliError:
    """A botocore exception raised while doing ``what`` as a CliError."""
    if isinstance(exc, ProfileNotFound):
        return CliError(EXIT_AWS, f"{exc} (--profile or AWS_PROFILE)")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CliError(EXIT_AWS, "no AWS credentials found: use --profile, AWS_PROFILE, "
                                  "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (aws sso login "
                                  "for SSO profiles)")
    if isinstance(exc, NoRegionError):
        return CliError(EXIT_USAGE, "no region: the stack's aws:region is not set")
    if isinstance(exc, EndpointConnectionError):
        return CliError(EXIT_AWS, f"{what}: cannot reach the endpoint: {exc}")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in DENIED:
            return CliError(EXIT_AWS, f"{what}: {code}: {message} (are the credentials "
                                      "valid, and allowed to do this?)")
        return CliError(EXIT_ATTENTION, f"{what}: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return CliError(EXIT_AWS, f"{what}: {exc}")
    raise exc
