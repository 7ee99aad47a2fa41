"""Transparency-log building blocks, each written against its public specification.

* ``merkle``: RFC 9162 tree hashing, inclusion and consistency proofs;
* ``note``: C2SP signed notes with Ed25519 keys (Go ``sumdb/note`` key formats);
* ``checkpoint``: C2SP tlog-checkpoint tree heads;
* ``tiles``: a C2SP tlog-tiles hash store on local disk;
* ``proof``: C2SP tlog-proof files;
* ``layout``: every file name and path of a log directory;
* ``leaf``: the canonical leaf encoding of published rows and manifests.

The package imports nothing from the rest of ``pipelines`` (``tests/test_layering.py``);
``pipelines.log.writer`` puts its parts together for the publisher.
"""
