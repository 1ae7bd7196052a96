"""The property catalog: every v4.11 claim is formalised or listed as not modelled, every
property is well formed and compiles for every policy, every action has a witness."""
import pytest

from model import ACTIONS, CATALOG, Model
from properties.index import PROPERTIES
from properties.claims import NOT_MODELLED, load_claims
from properties.property import compile_properties


def test_every_v411_claim_is_covered_or_listed_as_not_modelled():
    claims = load_claims()
    assert len(claims) >= 40
    cited = {c for p in PROPERTIES for c in p.claims}
    for cid, claim in claims.items():
        if "v4.11" not in claim.revisions:
            continue
        assert cid in cited or cid in NOT_MODELLED, f"{cid} is neither formalised nor listed"
        assert not (cid in cited and cid in NOT_MODELLED), f"{cid} is both"
    for cid, why in NOT_MODELLED.items():
        assert cid in claims and len(why) > 40


def test_properties_cite_known_claims_and_ids_are_unique():
    claims = load_claims()
    assert len({p.id for p in PROPERTIES}) == len(PROPERTIES)
    for p in PROPERTIES:
        for c in p.claims:
            assert c in claims, (p.id, c)


def test_every_action_has_a_witness():
    witnessed = {p.action for p in PROPERTIES if p.kind == "witness" and p.action}
    assert set(ACTIONS) <= witnessed


@pytest.mark.parametrize("scope", ["tiny", "small", "default"])
def test_every_property_compiles_for_every_policy(scope):
    for pol in CATALOG.values():
        m = Model(pol, scope)
        compiled = compile_properties(m, PROPERTIES)
        for c in compiled:
            if c.prop.on == "state":
                assert c.fn(m.init) in (True, False)


def test_the_initial_state_keeps_every_invariant():
    for pol in CATALOG.values():
        m = Model(pol, "small")
        for c in compile_properties(m, [p for p in PROPERTIES if p.kind == "always"]):
            assert c.fn(m.init), (pol.name, c.prop.id)
