"""Transparency-log building blocks, each written against its public specification.

* ``merkle``: RFC 9162 tree hashing, inclusion and consistency proofs;
* ``note``: C2SP signed notes with Ed25519 keys (Go ``sumdb/note`` key formats);
* ``checkpoint``: C2SP tlog-checkpoint tree heads;
* ``tiles``: a C2SP tlog-tiles hash store on local disk;
* ``proof``: C2SP tlog-proof files;
* ``leaf``: the canonical leaf encoding of published rows and manifests.

``pipelines.ledger`` puts them together for the publisher.
"""
