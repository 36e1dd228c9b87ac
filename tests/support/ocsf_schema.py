"""Whether an event is valid OCSF: against the JSON Schema of its class, as the ocsf-json-schema
package writes it from the OCSF schema that schema.ocsf.io exports (bundled in the package)."""
from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from userprov.operations import ocsf

CLASS_NAMES = {3001: "account_change", 3005: "user_access", 3006: "group_management"}


@cache
def validator(class_uid: int) -> Draft202012Validator:
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(ocsf.OCSF_VERSION)).get_class_schema(CLASS_NAMES[class_uid])
    return Draft202012Validator(schema)


def ocsf_errors(event: dict[str, Any]) -> list[str]:
    """Why the event is not valid OCSF of its class (and version); [] when it is."""
    if event.get("metadata", {}).get("version") != ocsf.OCSF_VERSION or event.get("class_uid") not in CLASS_NAMES:
        return [f"not an OCSF {ocsf.OCSF_VERSION} event of a mapped class"]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(event["class_uid"]).iter_errors(event)]
