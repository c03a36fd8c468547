"""msgspec structs and codecs for every DCI CRVS message. Pure data: no I/O, no settings.

`header`, `envelope`, `search`, `subscribe`, `notify`, `txn`, `ack`, `encrypted` and `auth`
hold one struct per object of the standard; `codec` decodes and encodes them; `jsonschema`
exports their JSON Schemas (specs/schemas/); `codes`, `primitives` and `crvs` hold the code
lists, constrained strings and the CRVS person record.
"""
