"""What travels on Kafka: Avro schemas (``avro/*.avsc``), a local schema registry and the wire format.

- ``qrtrace.schemas.registry``: SchemaRegistry, load_packaged, default_registry (subjects and ids).
- ``qrtrace.schemas.wire``: encode_batch / decode_batch in the Confluent wire format.
- ``qrtrace.schemas.compat``: the BACKWARD compatibility rules the registry enforces.
- ``qrtrace.schemas.fastcodec``: generated codecs that wire uses for flat records.
"""
