"""The standalone strategy registry is the one list of strategies the code knows."""

from __future__ import annotations

from handler.settings import STANDALONE_STRATEGIES
from handler.standalone.registry import IN_FLIGHT_FALLBACK, STRATEGIES
from handler.tags import ATTEMPT, IN_FLIGHT


def test_the_registry_holds_exactly_the_strategies_settings_accept():
    assert set(STRATEGIES) == set(STANDALONE_STRATEGIES)
    assert all(name == strategy.name for name, strategy in STRATEGIES.items())
    assert IN_FLIGHT_FALLBACK in STRATEGIES


def test_every_strategy_declares_its_iam_and_its_target_tag():
    for strategy in STRATEGIES.values():
        permissions = strategy.permissions
        assert permissions.on_instances, strategy.name
        assert permissions.tag_on_create, strategy.name
        assert strategy.target_tag.startswith("ami-upgrade:"), strategy.name


def test_target_tags_are_distinct_so_a_resumed_replacement_names_its_own():
    tags = [s.target_tag for s in STRATEGIES.values()]
    assert len(set(tags)) == len(tags)



def test_every_strategy_counts_its_intent_in_the_tag_room_check():
    """The intent (record_intent) writes in-flight, attempt and the target tag: each
    strategy's engine_tags lists them on the old instance, so the check counts them."""
    for strategy in STRATEGIES.values():
        written = {IN_FLIGHT, ATTEMPT, strategy.target_tag}
        assert written <= set(strategy.engine_tags["instance"]), strategy.name
