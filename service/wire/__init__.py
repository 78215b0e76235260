"""The JSON the service speaks: HTTP answers, webhook payloads and the console's views.

msgspec Structs with camelCase names, built from the store's records (service/store/rows.py)
or the read models of service/views.py. The OpenAPI document's component schemas are
generated from these types (service/api/openapi.py), so a field and its schema have one home.

Low in the import graph: it imports the domain and the store's records, never service.api,
service.calls or anything that leads back to them.
"""
