"""A big invented registry: thousands of deployment YAML files with a million access grants.

For measuring what a city-sized registry costs (loading, validating, rendering the portal and the
audit), not for the demo. Every name is invented from syllables; nothing comes from a real registry.
The shape follows what real registries look like: many licence-plate readers whose access lists
name hundreds of outside agencies with one shared purpose, small sensors with one or two grants,
some deployments that give an area instead of coordinates, some decommissioned, some with an
earlier policy version, commissioned dates spread over fifteen years.

Output is a pure function of ``deployments``, ``grants`` and ``seed``. Files are written as text
(every string a JSON-quoted YAML scalar), not through a YAML emitter, so 10,000 files take seconds.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

# A deployment's canonical JSON must stay under the registry's MAX_RECORD_BYTES (60,000; a grant takes up to
# 160 bytes there): no generated deployment lists more current grants than this.
MAX_GRANTS_PER_DEPLOYMENT = 340
FIRST_COMMISSIONED = date(2011, 1, 1)
LAST_COMMISSIONED = date(2026, 6, 30)
CENTRE = (35.23, -80.80)  # the invented region's centre (lat, lon); points are spread ±0.25°

_SYLLABLES_A = tuple(
    "Ash Bel Bram Cal Dun El Fen Gal Har Ives Kel Lin Mar Nor Ock Pem Quin Rad Sal Thorn Ul Val Wen Yar "
    "Brook Crest Dal Ember Fox Glen".split()
)
_SYLLABLES_B = tuple(
    "ford ton wick field bury mere dale brook haven ridge stead worth moor combe well ley port gate hollow wood".split()
)
_AGENCY_TYPES = tuple(
    "Police Department|County Sheriff's Office|County District Attorney|State Patrol Troop|"
    "Marshal's Office|Public Safety Department|Regional Fusion Center|Transit Police|Campus Police|"
    "Port Authority Police|Drug Task Force|Probation Office".split("|")
)
_CITY_DEPARTMENTS = tuple(
    "Police Department|Department of Transportation|Public Works|Environmental Services|"
    "Parks and Recreation|Office of Innovation|Library System|Housing Authority|Fire Department|"
    "Energy Office".split("|")
)
_VENDOR_WORDS_A = ("Sentry", "Civic", "Metro", "Beacon", "Lumen", "Vector", "Harbor", "Summit", "Atlas", "Polar")
_VENDOR_WORDS_B = ("Sensing", "Analytics", "Systems", "Networks", "Labs", "Mobility", "Devices", "Instruments")
_STREETS = tuple(
    "Elm Oak Maple Cedar Mill Bridge Market Station Church River Lake Park Hill Spring Union College "
    "Orchard Quarry Canal Willow".split()
)
_STREET_KINDS = ("Street", "Avenue", "Road", "Boulevard", "Lane", "Drive")

_DTPR_ORG = ["accountable__organization"]


@dataclass(frozen=True)
class _Kind:
    slug: str
    label: str
    share: float  # fraction of deployments of this kind
    grant_weight: float  # how many grants it gets relative to others
    purposes: tuple[str, ...]
    technologies: tuple[str, ...]
    data_types: tuple[str, ...]
    processing: tuple[str, ...]
    access: tuple[str, ...]
    storage: tuple[str, ...]
    classes: tuple[tuple[str, str, str], ...]  # (slug, data__ element, description)
    periods: tuple[str, ...]
    roles: tuple[str, ...]
    grant_purposes: tuple[str, ...]  # the first is the one most grants share
    outside_agencies: bool  # whether most grants go to outside agencies (ALPR-style sharing)


_KINDS = (
    _Kind(
        "alpr",
        "licence-plate reader",
        0.30,
        30.0,
        ("purpose__enforcement", "purpose__safety_security"),
        ("tech__identifiable_image", "tech__image_infrared"),
        ("data__personal", "data__pixel_based_image"),
        ("process__ai_system", "process__computer_vision", "process__encrypted_at_rest"),
        (
            "access__available_to_the_accountable_organization",
            "access__available_to_vendor",
            "access__not_available_to_me",
        ),
        ("storage__stored_on_3rd_party_cloud",),
        (
            ("plate_reads", "data__personal", "Plate number, time, camera location and direction of travel"),
            ("images", "data__pixel_based_image", "Vehicle context photos"),
        ),
        ("P30D", "P90D", "P1Y", "P2Y", "indefinite"),
        ("detective", "patrol_officer", "alpr_administrator", "analyst", "investigator"),
        (
            "Investigations of a specific crime or missing person",
            "Hotlist alerts for stolen vehicles",
            "Evidence disclosure in a criminal case",
        ),
        True,
    ),
    _Kind(
        "cctv_camera",
        "camera",
        0.20,
        3.0,
        ("purpose__safety_security",),
        ("tech__video_camera", "tech__identifiable_video"),
        ("data__pixel_based_image",),
        ("process__raw_data", "process__encrypted_at_rest"),
        ("access__available_to_the_accountable_organization", "access__not_available_to_me"),
        ("storage__stored_locally",),
        (("video", "data__pixel_based_image", "Continuous video of the covered area"),),
        ("P14D", "P30D", "P31D", "P60D"),
        ("operator", "supervisor", "investigator", "records_officer"),
        ("Review after a reported incident", "Live monitoring of public events", "Records requests"),
        True,
    ),
    _Kind(
        "traffic_counter",
        "traffic counter",
        0.15,
        0.3,
        ("purpose__mobility", "purpose__planning_decision_making"),
        ("tech__radar",),
        ("data__values_time",),
        ("process__aggregated",),
        ("access__available_to_the_accountable_organization", "access__available_to_download"),
        ("storage__stored_locally",),
        (("vehicle_counts", "data__values_time", "Vehicles counted per 15 minutes by direction"),),
        ("P1Y", "P5Y", "indefinite"),
        ("traffic_engineer", "planner"),
        ("Signal timing and road planning",),
        False,
    ),
    _Kind(
        "air_quality",
        "air-quality sensor",
        0.10,
        0.2,
        ("purpose__health", "purpose__ecology"),
        ("tech__air_quality",),
        ("data__values_time",),
        ("process__raw_data",),
        (
            "access__available_to_the_accountable_organization",
            "access__available_to_download",
            "access__available_to_3rd_parties",
        ),
        ("storage__stored_on_3rd_party_cloud",),
        (("air_quality", "data__values_time", "Particulate matter and ozone readings"),),
        ("P5Y", "indefinite"),
        ("scientist", "data_steward"),
        ("Air-quality reporting and research",),
        False,
    ),
    _Kind(
        "wifi_kiosk",
        "wifi kiosk",
        0.08,
        1.0,
        ("purpose__connectivity", "purpose__inform"),
        ("tech__wireless_access_point", "tech__system_screen"),
        ("data__personal", "data__tabular"),
        ("process__encrypted", "process__aggregated"),
        ("access__available_to_the_accountable_organization", "access__available_to_vendor"),
        ("storage__stored_on_3rd_party_cloud",),
        (
            ("device_identifiers", "data__personal", "Hashed identifiers of connected devices"),
            ("session_records", "data__tabular", "Session start, end and bytes transferred"),
        ),
        ("P7D", "P30D", "P90D"),
        ("network_engineer", "support_agent"),
        ("Network operations and troubleshooting", "Usage statistics"),
        False,
    ),
    _Kind(
        "streetlight_motion",
        "streetlight motion sensor",
        0.08,
        0.2,
        ("purpose__energy_efficiency", "purpose__safety_security"),
        ("tech__passive_infrared_sensor", "tech__motion_detector"),
        ("data__values_time",),
        ("process__aggregated",),
        ("access__available_to_the_accountable_organization", "access__available_to_vendor"),
        ("storage__stored_on_3rd_party_cloud",),
        (("motion_counts", "data__values_time", "Motion detections per 5 minutes"),),
        ("P90D", "P1Y"),
        ("lighting_engineer",),
        ("Dimming schedules and maintenance",),
        False,
    ),
    _Kind(
        "ev_charger",
        "EV charger",
        0.05,
        0.5,
        ("purpose__energy_efficiency", "purpose__mobility"),
        ("tech__electric_vehicle_charger", "tech__cellular"),
        ("data__tabular",),
        ("process__aggregated", "process__transport_layer_security"),
        ("access__available_to_the_accountable_organization", "access__available_to_vendor"),
        ("storage__stored_on_3rd_party_cloud",),
        (("charging_sessions", "data__tabular", "Session start, end and energy delivered"),),
        ("P1Y", "P3Y"),
        ("fleet_manager", "billing_clerk"),
        ("Billing and maintenance",),
        False,
    ),
    _Kind(
        "gunshot_detection",
        "acoustic gunshot sensor",
        0.04,
        5.0,
        ("purpose__safety_security", "purpose__fire_emergency"),
        ("tech__microphone",),
        ("data__binary", "data__spatial"),
        ("process__ai_system", "process__reviewed_internally"),
        (
            "access__available_to_the_accountable_organization",
            "access__available_to_vendor",
            "access__not_available_to_me",
        ),
        ("storage__stored_on_3rd_party_cloud",),
        (
            ("acoustic_alerts", "data__spatial", "Location and time of a suspected gunshot"),
            ("audio_clips", "data__binary", "A few seconds of audio around an alert"),
        ),
        ("P1Y", "P2Y", "indefinite"),
        ("dispatcher", "detective", "reviewer"),
        ("Dispatch to a suspected gunshot", "Investigations of a specific crime or missing person"),
        True,
    ),
)


def _places(rng: random.Random) -> list[str]:
    names = [a + b for a in _SYLLABLES_A for b in _SYLLABLES_B]
    rng.shuffle(names)
    return names


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML; every name here is ASCII)."""
    return json.dumps(text)


def _flow(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(items) + "]"


def _day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def _grant_counts(rng: random.Random, kinds: list[_Kind], total: int) -> list[int]:
    """``total`` grants over the deployments: at least one each, at most MAX_GRANTS_PER_DEPLOYMENT,
    in proportion to a heavy-tailed weight (readers shared with hundreds of agencies, most sensors
    with a handful). Water-filling: what the cap cuts off goes to the deployments still below it."""
    n = len(kinds)
    weights = [k.grant_weight * rng.paretovariate(1.3) for k in kinds]
    counts = [1] * n
    left = total - n
    while left > 0:
        open_ = [i for i in range(n) if counts[i] < MAX_GRANTS_PER_DEPLOYMENT]
        scale = left / sum(weights[i] for i in open_)
        given = 0
        for i in open_:
            share = min(MAX_GRANTS_PER_DEPLOYMENT - counts[i], int(weights[i] * scale), left - given)
            counts[i] += share
            given += share
        if given == 0:  # every share rounded to zero: one each, heaviest first
            for i in sorted(open_, key=lambda i: -weights[i])[:left]:
                counts[i] += 1
                given += 1
        left -= given
    return counts


def _grants_yaml(rng: random.Random, kind: _Kind, owner: str, count: int, agencies: list[str], indent: str) -> str:
    lines: list[str] = []
    shared = kind.grant_purposes[0]
    own_roles = list(kind.roles)
    lines += [
        f"{indent}- organisation: {_q(owner)}",
        f"{indent}  roles: {_flow([_q(r) for r in own_roles[:2]])}",
        f"{indent}  purpose: {_q(shared)}",
    ]
    others = rng.sample(agencies, min(count - 1, len(agencies))) if count > 1 else []
    while len(others) < count - 1:  # more grants than agencies: the same agency in other roles
        others.append(rng.choice(agencies))
    for org in others:
        if kind.outside_agencies:
            purpose = shared if rng.random() < 0.9 else rng.choice(kind.grant_purposes)
        else:
            purpose = rng.choice(kind.grant_purposes)
        roles = rng.sample(own_roles, 1 if rng.random() < 0.8 else min(2, len(own_roles)))
        lines += [
            f"{indent}- organisation: {_q(org)}",
            f"{indent}  roles: {_flow([_q(r) for r in roles])}",
            f"{indent}  purpose: {_q(purpose)}",
        ]
    return "\n".join(lines)


def _deployment_yaml(
    rng: random.Random,
    ident: str,
    kind: _Kind,
    grant_count: int,
    city: str,
    vendor: str,
    agencies: list[str],
    place: str,
) -> str:
    policing = kind.slug in ("alpr", "gunshot_detection")
    owner = f"{city} {'Police Department' if policing else rng.choice(_CITY_DEPARTMENTS)}"
    commissioned = _day(rng, FIRST_COMMISSIONED, LAST_COMMISSIONED)
    decommissioned = _day(rng, commissioned, LAST_COMMISSIONED + timedelta(days=120)) if rng.random() < 0.1 else None
    street = f"{rng.choice(_STREETS)} {rng.choice(_STREET_KINDS)}"
    cross = f"{rng.choice(_STREETS)} {rng.choice(_STREET_KINDS)}"
    classes = kind.classes
    lines = [
        "# Invented deployment generated by sensorlog dev generate-registry (pipelines/dev/bigregistry.py).",
        f"id: {ident}",
        f"name: {_q(f'{street} {kind.label} ({place})')}",
        f"kind: {kind.slug}",
        f"description: {_q(f'A {kind.label} at {street} and {cross} in {place}.')}",
        f"vendor: {_q(vendor)}",
        "accountable:",
        f"  organisation: {_q(owner)}",
        "  role: owner and operator",
        f"  dtpr: {_flow(_DTPR_ORG)}",
        f"purposes: {_flow(kind.purposes)}",
        f"technologies: {_flow(kind.technologies)}",
        f"data_types: {_flow(kind.data_types)}",
        f"processing: {_flow(kind.processing)}",
        "data_classes:",
    ]
    for slug, element, text in classes:
        lines += [f"  - slug: {slug}", f"    dtpr: {element}", f"    description: {_q(text)}"]
    periods = {slug: rng.choice(kind.periods) for slug, _, _ in classes}
    lines.append("retention:")
    for slug, _, _ in classes:
        lines += [f"  - data_class: {slug}", f"    period: {periods[slug]}"]
    lines += ["access:", f"  dtpr: {_flow(kind.access)}", "  grants:"]
    lines.append(_grants_yaml(rng, kind, owner, grant_count, agencies, "    "))
    lines += [
        "storage:",
        f"  dtpr: {_flow(kind.storage)}",
        f"  location: {_q(f'{vendor} cloud' if 'cloud' in kind.storage[0] else f'{owner} servers')}",
        "location:",
    ]
    if rng.random() < 0.08:  # an area, not a point: off the map, sometimes with a box
        lines.append(f"  area: {_q(f'{place} district')}")
        if rng.random() < 0.5:
            lat = CENTRE[0] + rng.uniform(-0.25, 0.25)
            lon = CENTRE[1] + rng.uniform(-0.25, 0.25)
            lines.append(f"  bbox: [{lon - 0.02:.4f}, {lat - 0.02:.4f}, {lon + 0.02:.4f}, {lat + 0.02:.4f}]")
        lines.append("  mobility: mobile" if rng.random() < 0.5 else "  mobility: fixed")
    else:
        lines += [
            f"  lat: {CENTRE[0] + rng.uniform(-0.25, 0.25):.5f}",
            f"  lon: {CENTRE[1] + rng.uniform(-0.25, 0.25):.5f}",
            "  mobility: fixed",
            f"  address: {_q(f'{street} at {cross}, {place}')}",
        ]
    lines += [
        "lifecycle:",
        f"  commissioned: {commissioned.isoformat()}",
        f"  decommissioned: {decommissioned.isoformat() if decommissioned else 'null'}",
        f"legal_basis: {_q(f'{city} Surveillance Technology Ordinance; {owner} use policy')}",
        f"policy_links: [https://www.{city.lower()}.example/surveillance/{ident}/use-policy]",
        "feedback:",
        f"  form: https://www.{city.lower()}.example/surveillance/feedback?deployment={ident}",
        f"  email: privacy@{city.lower()}.example",
    ]
    # An earlier policy on some small deployments (kept small: history repeats the grants).
    revised = grant_count <= 20 and rng.random() < 0.25 and commissioned < date(2025, 1, 1)
    if revised:
        effective = _day(rng, commissioned + timedelta(days=1), date(2026, 6, 30))
        lines += [
            "policy_version: 2",
            f"policy_effective_from: {effective.isoformat()}",
            f"policy_note: {_q('Retention revised after the annual surveillance report')}",
            "policy_history:",
            "  - version: 1",
            f"    effective_from: {commissioned.isoformat()}",
            "    retention:",
        ]
        for slug, _, _ in classes:
            lines += [f"      - data_class: {slug}", f"        period: {rng.choice(kind.periods)}"]
        lines += ["    access:", _grants_yaml(rng, kind, owner, 1, agencies, "      ")]
    else:
        lines += ["policy_version: 1", f"policy_effective_from: {commissioned.isoformat()}"]
    return "\n".join(lines) + "\n"


def write_registry(out: Path, deployments: int, grants: int, seed: int = 0) -> None:
    """Write ``deployments`` invented deployment files with ``grants`` current access grants in total
    (``access.grants``; earlier policy versions add a few more) into the folder ``out``.

    ValueError when the numbers cannot be met: fewer grants than deployments (each has at least one)
    or more than MAX_GRANTS_PER_DEPLOYMENT per deployment.
    """
    if deployments < 1:
        raise ValueError(f"deployments must be at least 1 (got {deployments})")
    if grants < deployments:
        raise ValueError(f"grants must be at least the number of deployments, {deployments} (got {grants})")
    if grants > deployments * MAX_GRANTS_PER_DEPLOYMENT:
        raise ValueError(
            f"grants must be at most {MAX_GRANTS_PER_DEPLOYMENT} per deployment, "
            f"{deployments * MAX_GRANTS_PER_DEPLOYMENT:,} in all (got {grants:,})"
        )
    rng = random.Random(seed)
    places = _places(rng)
    cities = places[:12]
    agencies = [f"{p} {t}" for p in places[12:] for t in _AGENCY_TYPES]
    rng.shuffle(agencies)
    vendors = [f"{a} {b}" for a in _VENDOR_WORDS_A for b in _VENDOR_WORDS_B]
    kind_of = rng.choices(_KINDS, weights=[k.share for k in _KINDS], k=deployments)
    counts = _grant_counts(rng, kind_of, grants)
    out.mkdir(parents=True, exist_ok=True)
    width = len(str(deployments))
    for i, (kind, count) in enumerate(zip(kind_of, counts, strict=True)):
        place = rng.choice(places)
        ident = f"{kind.slug.replace('_', '-')}-{place.lower()}-{i:0{width}d}"
        city = cities[rng.randrange(len(cities))] if rng.random() < 0.3 else cities[0]
        # Each kind has its few vendors, as in a real city.
        vendor = vendors[(_KINDS.index(kind) * 9 + rng.randrange(6)) % len(vendors)]
        text = _deployment_yaml(rng, ident, kind, count, city, vendor, agencies, place)
        (out / f"{ident}.yaml").write_text(text, encoding="utf-8")
