"""Deterministic synthetic insured persons and payment histories (`ssogw seed`): the rows
(``rows``), their binary COPY encoding (``copy_data``) and the load (``loader``)."""

from app.insured.demo_data.loader import TASK_PERSONS, load
from app.insured.demo_data.rows import (
    CHUNK,
    CLOSED_COLUMNS,
    FIRST_FEMALE,
    FIRST_MALE,
    LAST_NAMES,
    MONTH_COLUMNS,
    PERSON_COLUMNS,
    TITLES_FEMALE,
    TITLES_MALE,
    Person,
    Row,
    SeedPlan,
    former_s39,
    generate,
    national_id_for,
    section33_history,
)

__all__ = [
    "CHUNK",
    "CLOSED_COLUMNS",
    "FIRST_FEMALE",
    "FIRST_MALE",
    "LAST_NAMES",
    "MONTH_COLUMNS",
    "PERSON_COLUMNS",
    "TASK_PERSONS",
    "TITLES_FEMALE",
    "TITLES_MALE",
    "Person",
    "Row",
    "SeedPlan",
    "former_s39",
    "generate",
    "load",
    "national_id_for",
    "section33_history",
]
