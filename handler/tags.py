"""The tag vocabulary (prefix ``ami-upgrade:``), in one place.

Scope tags are set by users; progress tags are written by the engine so that an
interrupted invocation can be finished or rolled back by the next one.

Standalone replacements write, on the old instance: ``in-flight`` (the parameter driving
it), ``target-ami``, ``attempt``, ``launch-token``, ``health-waited``, ``rollback``
while one runs; ``failed-ami`` and ``failure-reason`` after a rollback (that AMI is not
retried until removed); ``replaced-by`` when it is kept stopped; ``root-volume-ami`` for
an in-place replacement. On each data volume being moved: ``in-flight``,
``home-instance``, ``home-device``, ``home-delete-on-termination``. On the old
instance's Elastic IPs, in the intent's own call: the intent's tags (``in-flight`` lets
the role move them). On the new instance, at launch: ``in-flight`` and ``replaces``.
With ``preserve_private_ip``, a launch template ``ami-upgrade-<old id>`` holds the old
instance's shape between its termination and the launch (tagged ``in-flight``,
``replaces``, ``launch-token``, ``elastic-ips``, ``source-dest-check``) and is deleted
at the end. All but ``attempt``, ``failed-ami``, ``failure-reason`` and ``replaced-by``
are removed when the replacement finishes. None is ever copied onto a replacement
(``PROGRESS_TAGS``).
"""

import re
from collections.abc import Mapping

from .aws import tag_list, tag_map  # noqa: F401  (the helpers live with the AWS helpers)
from .settings import AMI_ID_RE, INSTANCE_ID_RE

PREFIX = "ami-upgrade:"

# Set by users (contract).
PARAMETER = f"{PREFIX}parameter"   # resource follows this SSM parameter (SCOPE=tagged)
EXCLUDE = f"{PREFIX}exclude"       # "true" (yes, 1, on): never touched
STRATEGY = f"{PREFIX}strategy"     # per-instance override: relaunch | replace-root-volume

# Set by AWS: an instance that belongs to an Auto Scaling group.
ASG_MEMBER = "aws:autoscaling:groupName"

# On an Auto Scaling group (handler/asg/), not propagated to its instances: the last
# instance refresh the engine started and the AMI it heads to. A template whose ImageId
# is resolve:ssm:<parameter> does not say which AMI a running refresh launches; these do.
REFRESH_ID = f"{PREFIX}refresh-id"
REFRESH_AMI = f"{PREFIX}refresh-ami"

# Progress of a standalone replacement (handler/standalone/relaunch.py,
# handler/standalone/replace_root_volume.py).
# Written by the engine, in this order; each step's tags are the record from which
# the next invocation continues or rolls back. O = the old instance, N = the new one.
IN_FLIGHT = f"{PREFIX}in-flight"          # on O, N and moved volumes: the parameter whose
                                          # run is driving them (found even out of scope)
TARGET_AMI = f"{PREFIX}target-ami"        # on O: intent, the AMI it is being moved to
ATTEMPT = f"{PREFIX}attempt"              # on O: 1, 2, ... (a new attempt after a rollback)
HOME_INSTANCE = f"{PREFIX}home-instance"  # on a data volume, before it is detached: O
HOME_DEVICE = f"{PREFIX}home-device"      # ... its device there, e.g. /dev/sdf
HOME_DELETE_ON_TERMINATION = f"{PREFIX}home-delete-on-termination"   # ... "true"/"false"
LAUNCH_TOKEN = f"{PREFIX}launch-token"    # on O: the launch's ClientToken; from here on the
                                          # target AMI is fixed (the launch may have happened)
REPLACES = f"{PREFIX}replaces"            # on N, applied at launch: O
HEALTH_WAITED = f"{PREFIX}health-waited"  # on O: seconds earlier invocations waited for N's
                                          # status checks (the bound spans invocations)
ROLLBACK = f"{PREFIX}rollback"            # on O: the replacement is being rolled back; why
REPLACED_BY = f"{PREFIX}replaced-by"      # on O kept stopped (keep_old_instance): N
FAILED_AMI = f"{PREFIX}failed-ami"        # on O after a rollback: the AMI that failed; it is
FAILURE_REASON = f"{PREFIX}failure-reason"  # not retried until the tag is removed
ROOT_VOLUME_AMI = f"{PREFIX}root-volume-ami"  # on O: in-place root volume replacement intent
OPERATOR_HOLD = f"{PREFIX}operator-hold"  # on O: a rollback step O needs was refused for good;
                                          # what to do. Not retried until an operator removes it
# With preserve_private_ip, O's shape is kept in a launch template (ami-upgrade-<O>) while O
# is terminated and N not yet launched; the template carries in-flight, replaces,
# launch-token, health-waited and:
ELASTIC_IPS = f"{PREFIX}elastic-ips"      # O's Elastic IP allocation IDs, comma-separated
SOURCE_DEST_CHECK = f"{PREFIX}source-dest-check"   # O's source/dest check, "true"/"false"

VOLUMES = f"{PREFIX}volumes"              # on O, with the intent: its data volumes
                                          # IDs, comma-separated; only these are ever moved

# Never copied onto a replacement (they describe this instance's replacement, not it).
PROGRESS_TAGS = frozenset({
    IN_FLIGHT, TARGET_AMI, ATTEMPT, HOME_INSTANCE, HOME_DEVICE, HOME_DELETE_ON_TERMINATION,
    LAUNCH_TOKEN, REPLACES, HEALTH_WAITED, ROLLBACK, REPLACED_BY, FAILED_AMI, FAILURE_REASON,
    ROOT_VOLUME_AMI, ELASTIC_IPS, SOURCE_DEST_CHECK, VOLUMES,
    OPERATOR_HOLD})


# The values of ``ami-upgrade:exclude`` (case and surrounding spaces ignored): the usual
# spellings of a yes and a no. Any other value is reported, and the resource is not touched.
EXCLUDE_TRUE = ("true", "yes", "y", "1", "on")
EXCLUDE_FALSE = ("false", "no", "n", "0", "off", "")


def excluded_by_tag(tags: Mapping[str, str]) -> bool | None:
    """True or False as ``ami-upgrade:exclude`` says (absent: False); None for a value that
    is neither a yes nor a no, which the caller reports instead of guessing."""
    value = tags.get(EXCLUDE, "").strip().lower()
    if value in EXCLUDE_TRUE:
        return True
    return False if value in EXCLUDE_FALSE else None

# Transient errors: on O (or, once O is
# terminated, on the launch template keeping its shape, else on N), when a call of a
# replacement met a transient error: "<attempt>|<next attempt, ISO UTC>|<step>|<error>".
# The same step is not retried before that time; removed with the other progress tags.
RETRY = f"{PREFIX}retry"
PROGRESS_TAGS = PROGRESS_TAGS | {RETRY}


# ---------------------------------------------------------------- reading engine tags
# Every engine tag is input from whoever may tag the resource: its value is checked
# against the form the engine writes before anything is decided from it.

COUNT_RE = re.compile(r"^[0-9]{1,4}$")
_VOLUME_ID = r"vol-[0-9a-f]{8}(?:[0-9a-f]{9})?"
VOLUME_LIST_RE = re.compile(rf"^(?:{_VOLUME_ID}(?:,{_VOLUME_ID})*)?$")
TAG_VALUE_LIMIT = 256   # characters in an EC2 tag value
SECONDS_RE = re.compile(r"^[0-9]{1,7}(?:\.[0-9]{1,6})?$")

# key -> (the form the engine writes, that form's name in a report)
ENGINE_TAG_FORMS: Mapping[str, tuple[re.Pattern[str], str]] = {
    ATTEMPT: (COUNT_RE, "a count"),
    HEALTH_WAITED: (SECONDS_RE, "seconds"),
    TARGET_AMI: (AMI_ID_RE, "an AMI ID"),
    FAILED_AMI: (AMI_ID_RE, "an AMI ID"),
    ROOT_VOLUME_AMI: (AMI_ID_RE, "an AMI ID"),
    REFRESH_AMI: (AMI_ID_RE, "an AMI ID"),
    REPLACES: (INSTANCE_ID_RE, "an instance ID"),
    REPLACED_BY: (INSTANCE_ID_RE, "an instance ID"),
    HOME_INSTANCE: (INSTANCE_ID_RE, "an instance ID"),
    VOLUMES: (VOLUME_LIST_RE, "a list of volume IDs"),
}


def malformed_tag(tags: Mapping[str, str]) -> str | None:
    """Why one of ``tags``' engine tags is not in the form the engine writes (the first
    such, naming the tag and its value), or None when all are."""
    for key, (form, name) in ENGINE_TAG_FORMS.items():
        value = tags.get(key)
        if value is not None and not form.match(value):
            return (f"tag {key} holds {value[:64]!r}, which is not {name} as the engine "
                    "writes it; nothing is decided from it and the resource is not touched "
                    "(remove or correct the tag)")
    return None


def count_tag(value: str | None) -> int:
    """An ``attempt``-like tag's value; 0 when absent or not a count."""
    return int(value) if value is not None and COUNT_RE.match(value) else 0


def seconds_tag(value: str | None) -> float:
    """A ``health-waited``-like tag's value; 0 when absent or not a number of seconds."""
    return float(value) if value is not None and SECONDS_RE.match(value) else 0.0


def volume_record(tags: Mapping[str, str]) -> frozenset[str] | None:
    """The data volumes recorded on an old instance with its intent (``volumes``), or None
    when it records none (a replacement started before the record existed)."""
    value = tags.get(VOLUMES)
    if value is None or not VOLUME_LIST_RE.match(value):
        return None if value is None else frozenset()
    return frozenset(filter(None, value.split(",")))
