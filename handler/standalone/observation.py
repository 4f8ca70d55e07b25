"""What AWS says about replacements in flight, read in batches once per round.

The replacement state machines decide only from these snapshots (plus the tags
they wrote), never from memory of an earlier invocation: that is what makes an
invocation killed after any call resumable by the next one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..aws import describe, describe_instances, tag_map
from ..log import log_event
from ..tags import (
    HOME_DELETE_ON_TERMINATION,
    HOME_DEVICE,
    HOME_INSTANCE,
    LAUNCH_TOKEN,
    REPLACES,
    TARGET_AMI,
    volume_record,
)

if TYPE_CHECKING:
    from types_boto3_ec2.client import EC2Client

LIVE_STATES = ("pending", "running", "stopping", "stopped")


@dataclass(frozen=True)
class Attachment:
    """A volume's attachment as the instance it is on shows it (its block device
    mapping), so one DescribeInstances tells where every data volume sits."""

    volume_id: str
    device: str
    delete_on_termination: bool
    state: str          # attaching | attached | detaching


@dataclass(frozen=True)
class InstanceView:
    id: str
    state: str
    image_id: str
    tags: Mapping[str, str]
    root_device_name: str
    attachments: tuple[Attachment, ...]
    source_dest_check: bool = True
    state_reason: str = ""
    client_token: str = ""

    @classmethod
    def from_aws(cls, data: Mapping[str, Any]) -> InstanceView:
        root = data.get("RootDeviceName", "")
        return cls(
            id=data["InstanceId"], state=data["State"]["Name"], image_id=data.get("ImageId", ""),
            tags=tag_map(data.get("Tags")), root_device_name=root,
            attachments=tuple(
                Attachment(m["Ebs"]["VolumeId"], m["DeviceName"],
                           bool(m["Ebs"].get("DeleteOnTermination", False)),
                           m["Ebs"].get("Status", "attached"))
                for m in data.get("BlockDeviceMappings", [])
                if "Ebs" in m and m["DeviceName"] != root),
            source_dest_check=bool(data.get("SourceDestCheck", True)),
            state_reason=(data.get("StateReason") or {}).get("Message", ""),
            client_token=data.get("ClientToken", ""))

    def attachment(self, volume_id: str) -> Attachment | None:
        return next((a for a in self.attachments if a.volume_id == volume_id), None)


@dataclass(frozen=True)
class VolumeView:
    """A data volume of the old instance: tagged with its home, or still untagged on it."""

    id: str
    state: str                        # available | in-use | creating | ...
    attached_to: str | None
    device: str | None
    attach_state: str | None
    home_instance: str | None
    home_device: str | None
    home_delete_on_termination: bool

    @property
    def tagged(self) -> bool:
        return self.home_instance is not None

    @classmethod
    def from_aws(cls, data: Mapping[str, Any]) -> VolumeView:
        tags = tag_map(data.get("Tags"))
        attachment = (data.get("Attachments") or [None])[0] or {}
        return cls(
            id=data["VolumeId"], state=data.get("State", ""),
            attached_to=attachment.get("InstanceId"), device=attachment.get("Device"),
            attach_state=attachment.get("State"),
            home_instance=tags.get(HOME_INSTANCE), home_device=tags.get(HOME_DEVICE),
            home_delete_on_termination=tags.get(HOME_DELETE_ON_TERMINATION) == "true")


def shape_template_name(old_id: str) -> str:
    """The name of the launch template keeping ``old_id``'s shape (private IP
    preservation); names are unique in an account and region, so no other template can
    hold it while the engine's does."""
    return f"ami-upgrade-{old_id}"


@dataclass(frozen=True)
class Template:
    """The launch template keeping an old instance's shape (private IP preservation)."""

    id: str
    tags: Mapping[str, str]
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Observation:
    old_id: str
    old: InstanceView | None              # None once it is gone
    new: tuple[InstanceView, ...]         # live instances tagged as replacing it
    dead_new: tuple[InstanceView, ...]    # ... and those terminated or terminating
    volumes: tuple[VolumeView, ...]       # its data volumes, tagged or still attached to it
    statuses: Mapping[str, tuple[str, str]] = field(default_factory=dict)   # id -> (inst, sys)
    addresses: tuple[Mapping[str, Any], ...] = ()      # Elastic IPs on the old instance
    new_addresses: tuple[Mapping[str, Any], ...] = ()  # ... on the new one (moved, to move back)
    template: Template | None = None      # its shape, kept while it is terminated (preserve IP)
    # The old instance as AWS still shows it once terminated (about an hour): its tags are
    # the record a kept shape is checked against. None once it is no longer visible.
    old_record: InstanceView | None = None

    def untagged_volumes(self) -> tuple[VolumeView, ...]:
        return tuple(v for v in self.volumes if not v.tagged)

    def tagged_volumes(self) -> tuple[VolumeView, ...]:
        return tuple(v for v in self.volumes if v.tagged)


@dataclass(frozen=True)
class Needs:
    """What one machine's next decision needs read, beyond its old instance and volumes
    (so a round reads only what some replacement in flight can use)."""

    new_ids: tuple[str, ...] = ()   # its new instances, known by ID (read with the olds)
    search: bool = True             # the tag query for instances replacing it (unknown IDs)
    template: bool = True           # the launch template keeping its shape (preserve IP)
    # Volume ID -> (home device, home DeleteOnTermination) of the data volumes it tagged or
    # saw tagged: while each shows attached to its old or new instance, DescribeInstances
    # says where it is and DescribeVolumes is not needed. None: read the volumes.
    homes: Mapping[str, tuple[str, bool]] | None = None


class _Statuses(Mapping[str, tuple[str, str]]):
    """Status checks of the running new instances, read (once, batched) only when a
    machine first asks for one this round: most rounds decide nothing from them."""

    def __init__(self, ec2: EC2Client, instance_ids: list[str],
                 known: Mapping[str, tuple[str, str]] | None = None) -> None:
        self._ec2, self._ids = ec2, instance_ids
        self._read: dict[str, tuple[str, str]] | None = None
        if known is not None and set(instance_ids) <= set(known):   # read just before
            self._read = {i: known[i] for i in instance_ids}

    def _loaded(self) -> dict[str, tuple[str, str]]:
        if self._read is None:
            self._read = instance_statuses(self._ec2, self._ids) if self._ids else {}
        return self._read

    def __getitem__(self, key: str) -> tuple[str, str]:
        if key not in self._ids:
            raise KeyError(key)
        return self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


def _public(data: Mapping[str, Any]) -> bool:
    """True when an instance shows a public IP (an Elastic IP always shows as one)."""
    return bool(data.get("PublicIpAddress")) or any(
        n.get("Association") for n in data.get("NetworkInterfaces", []))


def observe(ec2: EC2Client, old_ids: Iterable[str], with_addresses: bool = False,
            needs: Mapping[str, Needs] | None = None,
            statuses_read: Mapping[str, tuple[str, str]] | None = None
            ) -> dict[str, Observation]:
    """One snapshot of every replacement in ``old_ids`` (a handful of batched reads).

    One DescribeInstances for the old instances and the new ones known by ID, one
    DescribeVolumes; the tag query for new instances, the launch templates and the
    Elastic IPs only for the replacements whose ``needs`` ask (all, without ``needs``)
    and the addresses only when an instance read shows a public IP; status checks
    when a machine first looks at one (or ``statuses_read``, read just before).
    """
    news: dict[str, list[InstanceView]] = {}
    dead: dict[str, list[InstanceView]] = {}
    volumes: dict[str, dict[str, VolumeView]] = {}
    addresses: dict[str, list[dict[str, Any]]] = {}
    ids = sorted(set(old_ids))
    wanted = {i: (needs or {}).get(i, Needs()) for i in ids}
    known_new = sorted({n for w in wanted.values() for n in w.new_ids} - set(ids))
    olds: dict[str, InstanceView] = {}
    seen_new: dict[str, InstanceView] = {}
    public: list[str] = []

    def place(data: Mapping[str, Any]) -> None:
        view = InstanceView.from_aws(data)
        if view.id in ids:
            olds[view.id] = view
        elif view.tags.get(REPLACES) in wanted:
            seen_new[view.id] = view
        else:
            return
        if _public(data):
            public.append(view.id)

    for data in describe_instances(ec2, ids=[*ids, *known_new]):
        place(data)
    search = [i for i in ids if wanted[i].search]
    for data in describe_instances(ec2, ids=search, id_filter=f"tag:{REPLACES}"):
        if data["InstanceId"] not in seen_new:
            place(data)
    _group_launched(seen_new.values(), olds, news, dead)

    def shown(old_id: str) -> list[tuple[InstanceView, Attachment]]:
        """The attachments its old and new instances show."""
        old = olds.get(old_id)
        holders = [*([old] if old is not None and old.state != "terminated" else []),
                   *news.get(old_id, [])]
        return [(h, a) for h in holders for a in h.attachments]

    read_volumes = [i for i in ids if wanted[i].homes is None or not set(
        wanted[i].homes or {}) <= {a.volume_id for _, a in shown(i)}]
    for data in describe(ec2, "describe_volumes", "Volumes", ids=read_volumes,
                         id_filter=f"tag:{HOME_INSTANCE}"):
        volume = VolumeView.from_aws(data)
        volumes.setdefault(volume.home_instance or "", {})[volume.id] = volume
    templates = _templates(ec2, [i for i in ids if wanted[i].template])
    for old_id in set(ids) - set(olds):   # the old one no longer visible: its template says
        _keep_launched_from(templates.get(old_id), old_id, news, dead)
    if with_addresses and public:
        for address in describe(ec2, "describe_addresses", "Addresses", ids=sorted(public),
                                id_filter="instance-id"):
            addresses.setdefault(address.get("InstanceId", ""), []).append(address)
    running_new = [n.id for group in news.values() for n in group if n.state == "running"]
    statuses = _Statuses(ec2, running_new, statuses_read)
    result = {}
    for old_id in ids:
        old = olds.get(old_id)
        if old is not None and old.state == "terminated":
            old = None
        mine = _data_volumes(old_id, volumes.get(old_id, {}), olds.get(old_id), old,
                             None if old_id in read_volumes else shown(old_id),
                             wanted[old_id].homes or {})
        result[old_id] = Observation(
            old_id, old, tuple(sorted(news.get(old_id, []), key=lambda n: n.id)),
            tuple(sorted(dead.get(old_id, []), key=lambda n: n.id)), mine,
            statuses, tuple(addresses.get(old_id, [])),
            tuple(a for n in news.get(old_id, []) for a in addresses.get(n.id, [])),
            templates.get(old_id), olds.get(old_id))
    return result


def _data_volumes(old_id: str, read: Mapping[str, VolumeView], recorded_on: InstanceView | None,
                  old: InstanceView | None,
                  shown: list[tuple[InstanceView, Attachment]] | None,
                  homes: Mapping[str, tuple[str, bool]]) -> tuple[VolumeView, ...]:
    """An old instance's data volumes, by device: those read tagged with it as their home
    (or, not read, each tagged one where its old or new instance shows it attached:
    ``shown``), less those its record does not list (``recorded_on``: the old instance as
    read, terminated too), plus those still on the live ``old`` one, not yet tagged."""
    mine = dict(read)
    for holder, a in shown or ():    # each tagged one shows where it is attached
        if a.volume_id in homes:
            device, dot = homes[a.volume_id]
            mine[a.volume_id] = VolumeView(a.volume_id, "in-use", holder.id, a.device,
                                           a.state, old_id, device, dot)
    refused = _drop_unrecorded(mine, recorded_on, old_id)
    for a in old.attachments if old is not None else ():   # still on it, not yet tagged
        if a.volume_id not in mine and a.volume_id not in refused:
            mine[a.volume_id] = VolumeView(a.volume_id, "in-use", old_id, a.device, a.state,
                                           None, None, a.delete_on_termination)
    return tuple(sorted(mine.values(), key=lambda v: (v.home_device or v.device or "", v.id)))


def launched_for(new: InstanceView, old: InstanceView | None, template: Template | None
                 ) -> bool:
    """Whether ``new`` is the launch the engine recorded: its ClientToken and image are
    the launch token and target AMI on the old instance (visible while it is terminated
    too), or on the launch template keeping its shape. A tag saying ``replaces`` proves
    nothing: anyone who may tag an instance can write it."""
    records = []
    if old is not None:
        records.append((old.tags.get(LAUNCH_TOKEN), old.tags.get(TARGET_AMI)))
    if template is not None:
        records.append((template.tags.get(LAUNCH_TOKEN), template.data.get("ImageId")))
    return any(token and new.client_token == token and new.image_id == image
               for token, image in records)


def _group_launched(seen: Iterable[InstanceView], olds: Mapping[str, InstanceView],
                    news: dict[str, list[InstanceView]], dead: dict[str, list[InstanceView]]
                    ) -> None:
    """Instances tagged as replacing an old one, by old one (live or dead), when the old
    one (visible) records their launch; those of an old one no longer visible are kept
    until its template is read (:func:`_keep_launched_from`)."""
    for view in seen:
        old_id = view.tags[REPLACES]
        if old_id in olds and not launched_for(view, olds[old_id], None):
            _refused(view, old_id)
            continue
        group = news if view.state in LIVE_STATES else dead
        group.setdefault(old_id, []).append(view)


def _keep_launched_from(template: Template | None, old_id: str,
                        news: dict[str, list[InstanceView]],
                        dead: dict[str, list[InstanceView]]) -> None:
    """Of the instances replacing an old one no longer visible, those its template records."""
    for group in (news, dead):
        group[old_id] = [n for n in group.get(old_id, [])
                         if launched_for(n, None, template) or _refused(n, old_id)]


def _drop_unrecorded(mine: dict[str, VolumeView], old: InstanceView | None, old_id: str
                     ) -> set[str]:
    """Removes from ``mine`` the volumes claiming ``old_id`` as their home that its record
    (``volumes``, written with the intent) does not list; returns their IDs."""
    record = volume_record(old.tags) if old is not None else None
    refused = set(mine) - record if record is not None else set()
    for volume_id in sorted(refused):
        log_event("volume_claim_refused", volume=volume_id, old_instance=old_id,
                  reason=f"tagged with {old_id} as its home, but not in its record")
        del mine[volume_id]
    return refused


def _refused(new: InstanceView, old_id: str) -> bool:
    """Logs that ``new`` claims ``old_id`` without proof; False (for filters)."""
    log_event("replacement_claim_refused", instance=new.id, old_instance=old_id,
              reason="not launched with the token and image recorded for it")
    return False


def _templates(ec2: EC2Client, old_ids: list[str]) -> dict[str, Template]:
    """The launch templates keeping the shapes of ``old_ids`` (normally none): only the one
    with the engine's name for each; another template tagged as one is ignored (logged)."""
    found: dict[str, Template] = {}
    for template in describe(ec2, "describe_launch_templates", "LaunchTemplates", ids=old_ids,
                             id_filter=f"tag:{REPLACES}"):
        tags = tag_map(template.get("Tags"))
        if template.get("LaunchTemplateName") != shape_template_name(tags[REPLACES]):
            log_event("shape_claim_refused", template=template["LaunchTemplateId"],
                      old_instance=tags[REPLACES],
                      reason=f"not named {shape_template_name(tags[REPLACES])}")
            continue
        version = ec2.describe_launch_template_versions(
            LaunchTemplateId=template["LaunchTemplateId"],
            Versions=["$Default"])["LaunchTemplateVersions"][0]
        found[tags[REPLACES]] = Template(template["LaunchTemplateId"], tags,
                                         dict(version.get("LaunchTemplateData", {})))
    return found


def instance_statuses(ec2: EC2Client, instance_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Instance id -> (instance status, system status), e.g. ("ok", "ok")."""
    return {s["InstanceId"]: (s.get("InstanceStatus", {}).get("Status", ""),
                              s.get("SystemStatus", {}).get("Status", ""))
            for s in describe(ec2, "describe_instance_status", "InstanceStatuses",
                              ids=instance_ids, id_param="InstanceIds",
                              IncludeAllInstances=True)}
