"""The AMI a run converges on: read from the parameter, validated before anything changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .aws import batches, describe, error_code, is_transient
from .settings import AMI_ID_RE

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client
    from types_boto3_ssm.client import SSMClient


class AmiError(ValueError):
    """The parameter does not hold an available AMI; the message names the value."""


class AmiNotReady(AmiError):
    """The AMI exists but is still ``pending``: not usable yet, usable soon (retried)."""


@dataclass(frozen=True)
class Image:
    id: str
    architecture: str
    platform: str            # "windows" or "linux"
    state: str
    name: str = ""
    platform_details: str = ""
    root_device_name: str = ""
    virtualization_type: str = ""
    usage_operation: str = ""
    product_codes: tuple[str, ...] = ()
    owner_id: str = ""
    owner_alias: str = ""

    @property
    def owner(self) -> str:
        """Its owner as a report names it: the account, and EC2's alias for it if any."""
        return f"{self.owner_id} ({self.owner_alias})" if self.owner_alias else self.owner_id

    @classmethod
    def from_aws(cls, data: dict[str, Any]) -> Image:
        """An image from DescribeImages."""
        return cls._described(data, data["ImageId"], data.get("State", ""),
                              data.get("Name", ""))

    @classmethod
    def known_from_instance(cls, instance: Mapping[str, Any]) -> Image:
        """What EC2 still says of the image an instance was launched from, on the instance
        itself (DescribeInstances uses the same keys as DescribeImages for its
        architecture, platform, root device, virtualization, billing and product codes).
        Used when the image is gone (a lifecycle policy deregistered it, its owner stopped
        sharing it): the checks are made from these."""
        return cls._described(instance, instance.get("ImageId", ""), "unavailable")

    @classmethod
    def _described(cls, data: Mapping[str, Any], image_id: str, state: str,
                   name: str = "") -> Image:
        return cls(id=image_id, architecture=data.get("Architecture", ""),
                   # AWS sets Platform only for Windows ("windows"); moto also says
                   # "Linux/UNIX" (the PlatformDetails value) for some Linux images.
                   platform=("windows" if str(data.get("Platform") or "").lower() == "windows"
                             else "linux"),
                   state=state, name=name,
                   platform_details=data.get("PlatformDetails", ""),
                   root_device_name=data.get("RootDeviceName", ""),
                   virtualization_type=data.get("VirtualizationType", ""),
                   usage_operation=data.get("UsageOperation", ""),
                   product_codes=tuple(sorted(p.get("ProductCodeId", "")
                                              for p in data.get("ProductCodes") or [])),
                   owner_id=data.get("OwnerId", ""), owner_alias=data.get("ImageOwnerAlias", ""))


def current_image(images: Mapping[str, Image], instance: Mapping[str, Any]) -> Image:
    """The image ``instance`` runs: as DescribeImages showed it (``images``), or, once it
    no longer exists, as the instance still describes it (:meth:`Image.known_from_instance`)."""
    return images.get(instance.get("ImageId", "")) or Image.known_from_instance(instance)


@dataclass(frozen=True)
class ParameterValue:
    name: str
    value: str
    version: int
    data_type: str = "text"

    def data_type_warning(self) -> str | None:
        """A parameter of data type ``text`` takes any value; ``aws:ec2:image`` makes SSM
        refuse one that is not an AMI the writer can see (recommended, not required)."""
        if self.data_type == IMAGE_DATA_TYPE:
            return None
        return (f"parameter {self.name} has data type {self.data_type!r}: create it with "
                f"--data-type {IMAGE_DATA_TYPE} so SSM refuses a value that is not an AMI")


IMAGE_DATA_TYPE = "aws:ec2:image"


def read_parameter(ssm: SSMClient, name: str) -> ParameterValue:
    try:
        data = ssm.get_parameter(Name=name)["Parameter"]
    except ClientError as exc:
        if is_transient(exc):   # not a bad parameter: the caller reports it and retries
            raise
        raise AmiError(f"cannot read parameter {name}: {error_code(exc)}") from None
    return ParameterValue(name, data["Value"].strip(), int(data.get("Version", 0)),
                          data.get("DataType") or "text")


def validate_ami(ec2: EC2Client, ami_id: str, source: str) -> Image:
    """The image ``ami_id`` if it exists and is available; AmiError otherwise."""
    if not AMI_ID_RE.match(ami_id):
        raise AmiError(f"{source} holds {ami_id[:100]!r}, which is not an AMI ID")
    images = describe_images(ec2, [ami_id])
    image = images.get(ami_id)
    if image is None:
        raise AmiError(f"{source} holds {ami_id}, which does not exist or is not visible")
    if image.state == "pending":
        raise AmiNotReady(f"{source} holds {ami_id}, whose state is 'pending', not "
                          "'available' yet")
    if image.state != "available":
        raise AmiError(f"{source} holds {ami_id}, whose state is {image.state!r}, "
                       "not 'available'")
    return image


def check_owner(image: Image, owners: tuple[str, ...], own_account: str | None) -> None:
    """AmiError naming the image and its owner unless one of ``owners`` owns it: its
    account ID, EC2's alias for that account (``amazon`` ...), or ``self`` when it is
    ``own_account`` (unknown: ``self`` matches nothing)."""
    accepted = {o for o in owners if o != "self"} | (
        {own_account} if own_account and "self" in owners else set())
    if image.owner_id and (image.owner_id in accepted or image.owner_alias in accepted):
        return
    raise AmiError(f"{image.id} is owned by {image.owner or 'an unknown account'}, which is "
                   f"not an allowed AMI owner ({', '.join(owners)}; ALLOWED_AMI_OWNERS): "
                   "refused before any change")


def describe_images(ec2: EC2Client, ids: Iterable[str]) -> dict[str, Image]:
    """Images by ID, batched; IDs that do not exist are simply absent from the result."""
    found: dict[str, Image] = {}
    for batch in batches(ids):
        try:
            images = _images(ec2, batch)
        except ClientError as exc:
            if not error_code(exc).startswith("InvalidAMIID"):
                raise
            images = []
            for image_id in batch:   # one bad ID fails the batch: fall back to one by one
                try:
                    images += _images(ec2, [image_id])
                except ClientError as inner:
                    if not error_code(inner).startswith("InvalidAMIID"):
                        raise
        found.update({i["ImageId"]: Image.from_aws(i) for i in images})
    return found


def _images(ec2: EC2Client, ids: list[str]) -> list[dict[str, Any]]:
    return describe(ec2, "describe_images", "Images", ImageIds=ids)


def incompatibility(current: Image | None, current_id: str, new: Image) -> str | None:
    """Why a resource on ``current`` cannot move to ``new``, or None when it can."""
    if current is None:
        return (f"current image {current_id} is not visible, so its architecture and platform "
                "cannot be checked")
    if current.architecture != new.architecture:
        return (f"architecture differs: current image {current.id} is {current.architecture}, "
                f"{new.id} is {new.architecture}")
    if current.platform != new.platform:
        return (f"platform differs: current image {current.id} is {current.platform}, "
                f"{new.id} is {new.platform}")
    return None
