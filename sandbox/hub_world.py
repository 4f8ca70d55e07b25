"""A hub and its spokes on the embedded AWS: 4 accounts (the hub and 3 spoke accounts), 2 regions.

The hub's resources are made as the hub stack makes them (wave parameters, advanced,
shared through RAM; report buses with the stack's policy; the state table; the gate
alarm), the promoter is the real ``hub.driver.Promoter`` with clients in the hub
account, and each spoke is the real function (``handler.main``) in its own account and
region, following its wave's parameter by ARN and reporting to the hub's bus.

What the test routes, as EventBridge and Scheduler would: a change of a wave parameter
to the spokes of that wave in that region (unless the test marks the spoke's event
lost), the events the spokes put on a hub bus to the promoter (the stack's rule; a
non-hub region's bus forwards to the hub region's), and due one-shot schedules to the
promoter (a schedule whose invocation fails stays and fires again, as Scheduler retries).

With ``estates``, each spoke has a small fleet of its own following its wave's parameter
(an Auto Scaling group ``web`` of one instance and a standalone instance ``db-1``, on
the old AMI) and its follow-up rule: a wave's change starts real instance refreshes and
replacements, which finish over emulated time (continuations delivered, follow-up rules
fired every period while enabled), and a spoke converges when its run says its estate is
on the AMI: a refresh that ends emits EC2 Auto Scaling's event on the spoke's default bus,
where the spoke's ``refresh-ended`` rule (the registry's pattern) runs the function again
(unless the test marks that event lost: the spoke's reconcile then catches it).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import boto3

from components.hub_policy import report_bus_policy
from components.reconcile import reconcile_event
from handler.follow_up import PERIOD_SECONDS, RATE, rule_name
from handler.tags import PARAMETER
from handler.triggers import REFRESH_ENDED
from hub.driver import Deployment, HubClients, Promoter
from hub.promoter import Phase, Rollout
from hub.settings import HubSettings, Target, load_hub_settings

from .core import EmbeddedAws, environment
from .cross_account_events import STATE_KEY
from .instance_refresh import ENDED_KEY, Ended, Registry
from .instance_refresh import STATE_KEY as REFRESHES
from .lambda_invoke import STATE_KEY as INVOCATIONS
from .lambda_runtime import LambdaFunction
from .routing import Trigger, install_rule, publish_in, receive_in, refresh_ended_entry

HUB, CANARY, FLEET_A, FLEET_B = "111111111111", "222222222222", "333333333333", "444444444444"
R1, R2 = "eu-west-1", "us-east-1"
OLD, NEW, NEWER = "ami-03cf127a", "ami-12c6146b", "ami-1812c061"   # moto's public images
GATE = "canary-errors"
SOURCE = "/golden/al2023"
CANARY_SPOKE = Target(CANARY, R1)
FLEET = (Target(FLEET_A, R1), Target(FLEET_A, R2), Target(FLEET_B, R2))
REPORT_BUS = "ami-upgrade-hub-reports"
PROMOTER = "ami-upgrade-hub"
FUNCTION_ARN = f"arn:aws:lambda:{R1}:{HUB}:function:{PROMOTER}"


class Crash(RuntimeError):
    """The promoter's invocation dies here (after the call took effect)."""


REGIONS = (R1, R2, "us-west-2", "ap-southeast-2")
SPOKE_GROUP, SPOKE_INSTANCE = "web", "db-1"   # a spoke's estate (``estates``)


def settings(rollback_on_gate: bool = True, canary: Target = CANARY_SPOKE,
             fleet: tuple[Target, ...] = FLEET) -> HubSettings:
    """A canary wave (60 minutes' bake, gated by GATE) then a fleet wave (120 minutes)."""
    def target(t: Target) -> dict[str, str]:
        return {"account": t.account, "region": t.region}
    return load_hub_settings({
        "account": HUB, "region": R1, "sourceParameterName": SOURCE,
        "waves": [{"name": "canary", "targets": [target(canary)], "bakeMinutes": 60,
                   "gateAlarms": [GATE], "rollbackOnGate": rollback_on_gate},
                  {"name": "fleet", "targets": [target(t) for t in fleet],
                   "bakeMinutes": 120}]})


def sized(accounts: int, regions: int) -> HubSettings:
    """``accounts`` spoke accounts x ``regions`` regions: the first pair is the canary."""
    if not 1 <= regions <= len(REGIONS) or not 1 <= accounts <= 7 or accounts * regions < 2:
        raise ValueError(f"expected 1 to 7 accounts and 1 to {len(REGIONS)} regions, "
                         "two spokes at least")
    spokes = [Target(str(222222222222 + 111111111111 * a), r)
              for a in range(accounts) for r in REGIONS[:regions]]
    return settings(canary=spokes[0], fleet=tuple(spokes[1:]))


def as_hub() -> Any:
    return environment({"MOTO_ACCOUNT_ID": HUB})


def as_spoke(target: Target) -> Any:
    return environment({"MOTO_ACCOUNT_ID": target.account, "AWS_REGION": target.region,
                        "AWS_DEFAULT_REGION": target.region})


class HubWorld:
    def __init__(self, aws: EmbeddedAws, hub: HubSettings | None = None,
                 estates: bool = False) -> None:
        self.aws = aws
        self.hub = hub or settings()
        self.estates = estates
        self.clients: dict[tuple[str, str, str], Any] = {}
        self.busy: set[Target] = set()   # spokes whose last run left their follow-up enabled
        self.lost: set[Target] = set()
        self.lost_refresh_ends: set[Target] = set()   # the next refresh end's event is lost
        self.refresh_rules: dict[Target, Trigger] = {}
        self.versions: dict[tuple[str, str], int] = {}
        self.crashes: list[tuple[str, int]] = []   # (operation, nth call) to die after
        self.calls: dict[str, int] = {}
        with as_hub():
            self._build_hub()
        self.spokes = {t: self._spoke(t) for w in self.hub.waves for t in w.targets}

    def client(self, account: str, service: str, region: str) -> Any:
        """A boto3 client for ``account`` (used inside its environment), made once: making
        a client costs more than a call to the embedded AWS."""
        key = (account, service, region)
        if key not in self.clients:
            self.clients[key] = boto3.client(service, region_name=region)  # type: ignore
        return self.clients[key]

    # ------------------------------------------------------------------- building
    def _build_hub(self) -> None:
        hub = self.hub
        regions = sorted({hub.region, *hub.regions, *hub.alarm_regions})
        clients = HubClients(
            ssm={r: boto3.client("ssm", region_name=r) for r in regions},
            dynamodb=boto3.client("dynamodb", region_name=R1),
            scheduler=boto3.client("scheduler", region_name=R1),
            cloudwatch={r: boto3.client("cloudwatch", region_name=r) for r in regions})
        for client in (*clients.ssm.values(), clients.dynamodb, clients.scheduler):
            client.meta.events.register("after-call", self._maybe_crash)
        clients.dynamodb.create_table(
            TableName="ami-upgrade-hub-state",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST")
        clients.ssm[R1].put_parameter(Name=SOURCE, Value=OLD, Type="String")
        clients.cloudwatch[R1].put_metric_alarm(
            AlarmName=GATE, MetricName="Errors", Namespace="Canary", Statistic="Sum",
            Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
        for wave in hub.waves:
            for region in wave.regions:
                clients.ssm[region].put_parameter(
                    Name=hub.wave_parameter_name(wave), Value=OLD, Type="String",
                    Tier="Advanced")
                self.versions[(wave.name, region)] = 1
                boto3.client("ram", region_name=region).create_resource_share(
                    name=f"{wave.name}-{region}",
                    resourceArns=[hub.wave_parameter_arn(wave, region)],
                    principals=sorted({t.account for t in wave.targets if t.region == region}))
        for region in regions:
            events = boto3.client("events", region_name=region)
            arn = events.create_event_bus(Name=REPORT_BUS)["EventBusArn"]
            events.put_permission(EventBusName=REPORT_BUS,
                                  Policy=json.dumps(report_bus_policy(hub, region, arn)))
        self.promoter = Promoter(hub, clients, Deployment(
            table_name="ami-upgrade-hub-state", function_arn=FUNCTION_ARN,
            scheduler_role_arn=f"arn:aws:iam::{HUB}:role/hub-scheduler"), now=self.aws.clock.now)
        self.promoter.save(Rollout(ami=OLD, phase=Phase.DONE), read_version=0)
        self.calls.clear()   # crash points count the promoter's calls only

    def _spoke(self, target: Target) -> LambdaFunction:
        wave = self.hub.wave_of(target)
        assert wave is not None
        parameter = self.hub.wave_parameter_arn(wave, target.region)
        function = LambdaFunction(self.aws, {
            "AMI_PARAMETER_NAME": parameter,
            "HUB_EVENT_BUS_ARN": f"arn:aws:events:{target.region}:{HUB}:event-bus/{REPORT_BUS}",
            # moto's stock images are Amazon's; a real spoke allows the hub's account.
            "ALLOWED_AMI_OWNERS": json.dumps(["amazon", HUB]),
            "MOTO_ACCOUNT_ID": target.account, "AWS_REGION": target.region,
            "AWS_DEFAULT_REGION": target.region}, name=f"spoke-{target.account}-{target.region}")
        if self.estates:
            with as_spoke(target):
                self._estate(target, parameter, function)
        return function

    def _estate(self, target: Target, parameter: str, function: LambdaFunction) -> None:
        """A group of one and a standalone instance on the old AMI, following ``parameter``,
        and the function's follow-up rule as the spoke's stack deploys it (DISABLED)."""
        region, zone = target.region, f"{target.region}a"
        ec2 = self.client(target.account, "ec2", region)
        template = ec2.create_launch_template(
            LaunchTemplateName=f"{SPOKE_GROUP}-template",
            LaunchTemplateData={"ImageId": OLD, "InstanceType": "t3.small"},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": [
                {"Key": PARAMETER, "Value": parameter}]}])["LaunchTemplate"]
        self.client(target.account, "autoscaling", region).create_auto_scaling_group(
            AutoScalingGroupName=SPOKE_GROUP, MinSize=1, MaxSize=2, DesiredCapacity=1,
            LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
            AvailabilityZones=[zone],
            Tags=[{"Key": PARAMETER, "Value": parameter, "PropagateAtLaunch": True}])
        ec2.run_instances(
            ImageId=OLD, InstanceType="t3.small", MinCount=1, MaxCount=1,
            Placement={"AvailabilityZone": zone},
            NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": False}],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "Name", "Value": SPOKE_INSTANCE}, {"Key": PARAMETER, "Value": parameter}]}])
        self.refresh_rules[target] = install_rule(REFRESH_ENDED, parameter, function.name,
                                                  region, suffix=REFRESH_ENDED)
        events = self.client(target.account, "events", region)
        events.put_rule(Name=rule_name(function.name), ScheduleExpression=RATE,
                        State="DISABLED")
        events.put_targets(Rule=rule_name(function.name), Targets=[{
            "Id": "function", "Arn": function.arn,
            "Input": json.dumps(reconcile_event(parameter, False))}])

    def estate_images(self, target: Target) -> dict[str, str]:
        """What a spoke's estate runs: the group's instances' and the standalone's AMI."""
        with as_spoke(target):
            ec2 = self.client(target.account, "ec2", target.region)
            running = [i for r in ec2.describe_instances(Filters=[
                {"Name": "instance-state-name", "Values": ["pending", "running"]}])[
                "Reservations"] for i in r["Instances"]]
        images: dict[str, set[str]] = {}
        for instance in running:
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            name = (SPOKE_GROUP if "aws:autoscaling:groupName" in tags
                    else tags.get("Name", instance["InstanceId"]))
            images.setdefault(name, set()).add(instance["ImageId"])
        return {name: ",".join(sorted(ids)) for name, ids in sorted(images.items())}

    def _maybe_crash(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1
        if (model.name, self.calls[model.name]) in self.crashes:
            self.crashes.remove((model.name, self.calls[model.name]))
            raise Crash(f"died after {model.name} #{self.calls[model.name]}")

    # ------------------------------------------------------------------- the hub
    def handle(self, event: dict) -> dict:
        """The promoter on one event, then whatever EventBridge routes from its writes."""
        with as_hub():
            result = self.promoter.handle(event)
        self.forward_wave_changes()
        return result

    def deliver_invocations(self) -> list[dict]:
        """Asynchronous invokes of the promoter (the operator CLI's commands), delivered as
        Lambda delivers them; the promoter's results, in order."""
        queue: list[dict] = self.aws.state.setdefault(INVOCATIONS, [])
        results = []
        while item := next((i for i in queue if i["function"] in (PROMOTER, FUNCTION_ARN)),
                           None):
            queue.remove(item)
            results.append(self.handle(item["event"]))
        return results

    def publish(self, ami: str) -> dict:
        with as_hub():
            self.client(HUB, "ssm", R1).put_parameter(
                Name=SOURCE, Value=ami, Type="String", Overwrite=True)
        return self.handle(self.source_event())

    def source_event(self) -> dict:
        return {"version": "0", "id": "src", "detail-type": "Parameter Store Change",
                "source": "aws.ssm", "account": HUB, "region": R1,
                "time": self.aws.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "resources": [], "detail": {"name": SOURCE, "operation": "Update"}}

    def rollout(self) -> Rollout:
        with as_hub():
            return self.promoter.load()

    def wave_value(self, wave: str, region: str) -> str:
        with as_hub():
            return str(self.client(HUB, "ssm", region).get_parameter(
                Name=f"/ami-upgrade/hub/waves/{wave}")["Parameter"]["Value"])

    def wave_history(self, wave: str, region: str) -> list[str]:
        with as_hub():
            history = self.client(HUB, "ssm", region).get_parameter_history(
                Name=f"/ami-upgrade/hub/waves/{wave}")["Parameters"]
        return [p["Value"] for p in history]

    def set_gate(self, state: str) -> None:
        with as_hub():
            self.client(HUB, "cloudwatch", R1).set_alarm_state(
                AlarmName=GATE, StateValue=state, StateReason="test")

    def advance(self, minutes: float) -> None:
        """Emulated time moves; due bake checks fire (a failed one stays, and fires again).
        With ``estates``, time moves a follow-up period at a time: the spokes' enabled
        follow-up rules fire and due checks are delivered at each step."""
        left = minutes * 60
        while left > 0:
            step = min(left, PERIOD_SECONDS) if self.estates else left
            self.aws.advance(step)
            left -= step
            if self.estates:
                self.route_refresh_ends()
                self.fire_follow_ups()
            self.fire_due_schedules()

    def fire_due_schedules(self) -> None:
        for name, event in self.due_schedules():
            self.handle(event)
            with as_hub():
                self.client(HUB, "scheduler", R1).delete_schedule(Name=name)

    def due_schedules(self) -> list[tuple[str, dict]]:
        with as_hub():
            scheduler = self.client(HUB, "scheduler", R1)
            names = [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
            found = [scheduler.get_schedule(Name=n) for n in names]
        due = []
        for schedule in found:
            at = dt.datetime.fromisoformat(schedule["ScheduleExpression"][3:-1]).replace(
                tzinfo=dt.UTC)
            if at <= self.aws.clock.now():
                due.append((schedule["Name"], json.loads(schedule["Target"]["Input"])))
        return sorted(due, key=lambda d: d[0])

    # ------------------------------------------------------------------- the spokes
    def forward_wave_changes(self) -> None:
        """The hub's wave rules: a new version of a wave parameter reaches its spokes."""
        for wave in self.hub.waves:
            for region in wave.regions:
                with as_hub():
                    version = self.client(HUB, "ssm", region).get_parameter(
                        Name=self.hub.wave_parameter_name(wave))["Parameter"]["Version"]
                if version == self.versions[(wave.name, region)]:
                    continue
                self.versions[(wave.name, region)] = version
                for target in wave.targets:
                    if target.region != region:
                        continue
                    if target in self.lost:
                        self.lost.discard(target)
                        continue
                    self.run_spoke(target, self.wave_event(wave.name, region))

    def wave_event(self, wave: str, region: str) -> dict:
        return {"version": "0", "id": f"{wave}-{region}", "detail-type": "Parameter Store Change",
                "source": "aws.ssm", "account": HUB, "region": region,
                "time": self.aws.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "resources": [], "detail": {"name": f"/ami-upgrade/hub/waves/{wave}",
                                            "operation": "Update", "type": "String"}}

    def reconcile(self, target: Target) -> dict:
        """The spoke's scheduled reconcile (the direct event)."""
        return self.run_spoke(target, {"parameter_name": self.spokes[target].environment[
            "AMI_PARAMETER_NAME"]})

    def run_spoke(self, target: Target, event: dict) -> dict:
        """One invocation of the spoke, then its continuations, as Lambda delivers them."""
        report = self.spokes[target].invoke(event)
        self.spokes[target].drain()
        self.route_reports()     # the reports of the run and its continuations, in order
        if self.estates:   # only a run of the spoke's function switches its rule
            self.busy.discard(target)
            if self.follow_up_enabled(target):
                self.busy.add(target)
        return report

    def settled(self) -> bool:
        """Every spoke's estate runs what its wave's parameter holds, and no spoke has work
        left (its refreshes finished and their ends routed, its replacements done)."""
        refreshes: Registry | None = self.aws.state.get(REFRESHES)
        if self.busy or self.aws.state.get(ENDED_KEY) or (refreshes is not None and any(
                refreshes.active(t.account, t.region, SPOKE_GROUP) for t in self.spokes)):
            return False
        for target in self.spokes:
            wave = self.hub.wave_of(target)
            assert wave is not None
            value = self.wave_value(wave.name, target.region)
            if set(self.estate_images(target).values()) != {value}:
                return False
        return True

    def route_refresh_ends(self) -> list[tuple[Target, dict]]:
        """EC2 Auto Scaling's events for the refreshes that ended, put on their account's
        default bus; what a spoke's refresh-ended rule matches runs the spoke. The
        (target, event) pairs delivered, in order."""
        ended: list[Ended] = self.aws.state.pop(ENDED_KEY, [])
        delivered = []
        for end in ended:
            target = Target(end.account, end.region)
            rule = self.refresh_rules.get(target)
            if rule is None:
                continue
            if target in self.lost_refresh_ends:
                self.lost_refresh_ends.discard(target)
                continue
            with as_spoke(target):
                publish_in(target.region, refresh_ended_entry(end))
                events = receive_in(target.region, rule)
            for event in events:
                delivered.append((target, event))
                self.run_spoke(target, event)
        return delivered

    def follow_up_enabled(self, target: Target) -> bool:
        with as_spoke(target):
            return bool(self.client(target.account, "events", target.region).describe_rule(
                Name=rule_name(self.spokes[target].name))["State"] == "ENABLED")

    def fire_follow_ups(self) -> None:
        """The spokes' follow-up rules, as EventBridge fires them while enabled."""
        for target in sorted(self.busy):
            self.run_spoke(target, reconcile_event(
                self.spokes[target].environment["AMI_PARAMETER_NAME"], False))

    def route_reports(self, on_report: Callable[[dict], Any] | None = None) -> None:
        """Reports on the hub's buses reach the promoter (a non-hub region's via the hub's)."""
        queued = self.aws.state.get(STATE_KEY, {})
        while any(queued.values()):
            for bus in sorted(queued):
                while queued[bus]:
                    self.handle(queued[bus].pop(0))
