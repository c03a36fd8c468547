"""The Farajaland location hierarchy: provinces (states), districts, health facilities, offices.

Loaded once from the OpenCRVS Farajaland seed CSVs shipped in `data/farajaland/` (MPL-2.0,
see the NOTICE there). OpenCRVS mints a random uuid per location when it seeds a country; we
need ids that are the same on every machine (seed data, simulator, tests), so a location's id
is `uuid5(NAMESPACE_URL, "farajaland:" + code)` where `code` is the CSV code (statistical code
for admin areas, facility/office id otherwise). `location_uuid` computes it.
"""

from __future__ import annotations

import csv
import enum
import functools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources

DATA_PACKAGE = "dci_bridge.records.data.farajaland"
LOCATIONS_CSV = "farajaland-v1.8.1-locations.csv"
OFFICES_CSV = "farajaland-v1.8.1-crvs-facilities.csv"
FACILITIES_CSV = "farajaland-v1.8.1-health-facilities.csv"
COUNTRY_CODE = "FAR"


class LocationType(enum.StrEnum):
    ADMIN_STRUCTURE = "ADMIN_STRUCTURE"
    HEALTH_FACILITY = "HEALTH_FACILITY"
    CRVS_OFFICE = "CRVS_OFFICE"


class Jurisdiction(enum.StrEnum):
    STATE = "STATE"
    DISTRICT = "DISTRICT"


def location_uuid(code: str) -> str:
    """The deterministic id of the Farajaland location with this CSV code."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"farajaland:{code}"))


@dataclass(frozen=True, slots=True)
class Location:
    """One location; `parent_id` is None for a province (the top of the hierarchy)."""

    id: str
    code: str
    name: str
    type: LocationType
    parent_id: str | None
    jurisdiction: Jurisdiction | None = None

    @property
    def identifier_value(self) -> str:
        """The OpenCRVS identifier value: `ADMIN_STRUCTURE_<code>`, `HEALTH_FACILITY_<code>`..."""
        return f"{self.type.value}_{self.code}"


class LocationIndex:
    """Look-ups over one location hierarchy: by id, by code, ancestors, children."""

    def __init__(self, locations: Sequence[Location]) -> None:
        self._by_id: dict[str, Location] = {}
        self._by_code: dict[str, Location] = {}
        self._children: dict[str, list[Location]] = {}
        for location in locations:
            if location.id in self._by_id or location.code in self._by_code:
                raise ValueError(f"duplicate location code {location.code!r}")
            self._by_id[location.id] = location
            self._by_code[location.code] = location
            if location.parent_id is not None:
                self._children.setdefault(location.parent_id, []).append(location)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Location]:
        return iter(self._by_id.values())

    def get(self, location_id: str) -> Location | None:
        return self._by_id.get(location_id)

    def by_code(self, code: str) -> Location | None:
        return self._by_code.get(code)

    def of_type(self, kind: LocationType) -> list[Location]:
        return [loc for loc in self._by_id.values() if loc.type is kind]

    def states(self) -> list[Location]:
        return [loc for loc in self._by_id.values() if loc.jurisdiction is Jurisdiction.STATE]

    def districts(self) -> list[Location]:
        return [loc for loc in self._by_id.values() if loc.jurisdiction is Jurisdiction.DISTRICT]

    def children(self, location_id: str) -> list[Location]:
        return list(self._children.get(location_id, ()))

    def ancestors(self, location_id: str) -> tuple[Location, ...]:
        """The enclosing locations, nearest first (district, then province); () if unknown."""
        found: list[Location] = []
        current = self._by_id.get(location_id)
        while current is not None and current.parent_id is not None:
            current = self._by_id.get(current.parent_id)
            if current is None or current in found:
                break
            found.append(current)
        return tuple(found)

    def district_and_state(self, location_id: str) -> tuple[Location | None, Location | None]:
        """The district and province containing (or being) this location."""
        district: Location | None = None
        state: Location | None = None
        location = self._by_id.get(location_id)
        for item in (location, *self.ancestors(location_id)):
            if item is None:
                continue
            if item.jurisdiction is Jurisdiction.DISTRICT and district is None:
                district = item
            elif item.jurisdiction is Jurisdiction.STATE and state is None:
                state = item
        return district, state


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files(DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _parent_code(part_of: str) -> str:
    return part_of.removeprefix("Location/").strip()


def load_farajaland() -> list[Location]:
    """Read the three CSVs into locations: provinces, districts, offices, health facilities."""
    locations: list[Location] = []
    seen_states: set[str] = set()
    for row in _read_csv(LOCATIONS_CSV):
        state_code = row["admin1Pcode"].strip()
        if state_code not in seen_states:
            seen_states.add(state_code)
            locations.append(
                Location(
                    id=location_uuid(state_code),
                    code=state_code,
                    name=row["admin1Name_en"].strip(),
                    type=LocationType.ADMIN_STRUCTURE,
                    parent_id=None,
                    jurisdiction=Jurisdiction.STATE,
                )
            )
    for row in _read_csv(LOCATIONS_CSV):
        code = row["admin2Pcode"].strip()
        locations.append(
            Location(
                id=location_uuid(code),
                code=code,
                name=row["admin2Name_en"].strip(),
                type=LocationType.ADMIN_STRUCTURE,
                parent_id=location_uuid(row["admin1Pcode"].strip()),
                jurisdiction=Jurisdiction.DISTRICT,
            )
        )
    for name in (OFFICES_CSV, FACILITIES_CSV):
        for row in _read_csv(name):
            locations.append(
                Location(
                    id=location_uuid(row["id"].strip()),
                    code=row["id"].strip(),
                    name=row["name"].strip(),
                    type=LocationType(row["locationType"].strip()),
                    parent_id=location_uuid(_parent_code(row["partOf"])),
                )
            )
    return locations


@functools.cache
def farajaland() -> LocationIndex:
    """The Farajaland hierarchy (4 provinces, 16 districts, 17 offices, 300 facilities)."""
    return LocationIndex(load_farajaland())
